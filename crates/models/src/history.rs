//! Run history in `hub.runs`, `hub.model_runs` and `hub.test_results` (Delta, append-only).

use std::sync::Arc;

use cdphub_lake::delta::{self, DeltaLocation};
use cdphub_lake::{Catalog, HUB_SCHEMA, LakeError};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::runner::{ModelStatus, RunReport};

pub const RUNS: &str = "runs";
pub const MODEL_RUNS: &str = "model_runs";
pub const TEST_RESULTS: &str = "test_results";

/// Appends the run to the history tables and refreshes them in the catalog.
pub async fn record(catalog: &Catalog, report: &RunReport) -> Result<(), LakeError> {
    let tables = [
        (RUNS, runs_batch(report)),
        (MODEL_RUNS, model_runs_batch(report)),
        (TEST_RESULTS, test_results_batch(report)),
    ];
    for (table, batch) in tables {
        let batch = batch.map_err(|e| LakeError::datafusion(format!("hub.{table}"), e.into()))?;
        let location = DeltaLocation::system(table);
        let written = delta::append(&catalog.lake, &location, vec![batch]).await?;
        let provider = delta::provider(&written, &location.sql_name).await?;
        catalog.set_table(HUB_SCHEMA, table, provider);
    }
    Ok(())
}

type BatchResult = Result<RecordBatch, datafusion::arrow::error::ArrowError>;

fn timestamp_field(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        nullable,
    )
}

fn timestamps(values: impl Iterator<Item = DateTime<Utc>>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from(values.map(|t| t.timestamp_micros()).collect::<Vec<_>>())
            .with_timezone("UTC"),
    )
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from(values.collect::<Vec<_>>()))
}

fn runs_batch(report: &RunReport) -> BatchResult {
    let schema = Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        timestamp_field("started_at", false),
        timestamp_field("finished_at", false),
        Field::new("status", DataType::Utf8, false),
        Field::new("selectors", DataType::Utf8, false),
        Field::new("models_succeeded", DataType::Int64, false),
        Field::new("models_failed", DataType::Int64, false),
        Field::new("models_skipped", DataType::Int64, false),
        Field::new("cdphub_version", DataType::Utf8, false),
    ]);
    let count = |status| Arc::new(Int64Array::from(vec![report.count(status) as i64])) as ArrayRef;
    let selectors = if report.selectors.is_empty() {
        "*".to_string()
    } else {
        report.selectors.join(" ")
    };
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            strings([Some(report.run_id.as_str())].into_iter()),
            timestamps([report.started_at].into_iter()),
            timestamps([report.finished_at].into_iter()),
            strings([Some(report.status())].into_iter()),
            strings([Some(selectors.as_str())].into_iter()),
            count(ModelStatus::Success),
            count(ModelStatus::Failed),
            count(ModelStatus::Skipped),
            strings([Some(env!("CARGO_PKG_VERSION"))].into_iter()),
        ],
    )
}

fn model_runs_batch(report: &RunReport) -> BatchResult {
    let schema = Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        timestamp_field("started_at", false),
        timestamp_field("finished_at", false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("rows_written", DataType::Int64, true),
        Field::new("delta_version", DataType::Int64, true),
        Field::new("error", DataType::Utf8, true),
    ]);
    let models = &report.models;
    let names: Vec<String> = models.iter().map(|m| m.model.to_string()).collect();
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            strings(models.iter().map(|_| Some(report.run_id.as_str()))),
            strings(names.iter().map(|n| Some(n.as_str()))),
            timestamps(models.iter().map(|m| m.started_at)),
            timestamps(models.iter().map(|m| m.finished_at)),
            Arc::new(Int64Array::from_iter_values(
                models.iter().map(|m| m.duration_ms()),
            )),
            strings(models.iter().map(|m| Some(m.status.as_str()))),
            Arc::new(Int64Array::from_iter(
                models.iter().map(|m| m.rows_written.map(|r| r as i64)),
            )),
            Arc::new(Int64Array::from_iter(
                models.iter().map(|m| m.delta_version.map(|v| v as i64)),
            )),
            strings(models.iter().map(|m| m.error.as_deref())),
        ],
    )
}

fn test_results_batch(report: &RunReport) -> BatchResult {
    let schema = Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("test", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("failing_rows", DataType::Int64, false),
        Field::new("query", DataType::Utf8, false),
    ]);
    let rows: Vec<(String, &crate::data_tests::TestOutcome)> = report
        .models
        .iter()
        .flat_map(|m| m.tests.iter().map(move |t| (m.model.to_string(), t)))
        .collect();
    let statuses: Vec<String> = rows.iter().map(|(_, t)| t.status.to_string()).collect();
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            strings(rows.iter().map(|_| Some(report.run_id.as_str()))),
            strings(rows.iter().map(|(m, _)| Some(m.as_str()))),
            strings(rows.iter().map(|(_, t)| Some(t.name.as_str()))),
            strings(statuses.iter().map(|s| Some(s.as_str()))),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, t)| t.failing_rows as i64),
            )),
            strings(rows.iter().map(|(_, t)| Some(t.query.as_str()))),
        ],
    )
}
