//! Runs the selected models in dependency order, independent ones in parallel. Each model is
//! computed into a staged version inside its table's folder, tested there, and only then
//! published by one Delta commit of those same files.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use cdphub_lake::delta::{self, DeltaLocation, Layout};
use cdphub_lake::raw::same_logical_type;
use cdphub_lake::{Catalog, LakeError};
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::Column;
use datafusion::logical_expr::{JoinType, col};
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use tokio::task::JoinSet;

use crate::data_tests::{self, TestOutcome, TestStatus};
use crate::error::{ModelError, Result};
use crate::graph::ModelGraph;
use crate::project::{Materialization, Model, ModelName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    Success,
    Failed,
    Skipped,
}

impl ModelStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModelOutcome {
    pub model: ModelName,
    pub status: ModelStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows_written: Option<u64>,
    pub delta_version: Option<u64>,
    pub error: Option<String>,
    pub tests: Vec<TestOutcome>,
}

impl ModelOutcome {
    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub selectors: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// In the order the models finished.
    pub models: Vec<ModelOutcome>,
}

impl RunReport {
    pub fn count(&self, status: ModelStatus) -> usize {
        self.models.iter().filter(|m| m.status == status).count()
    }

    pub fn succeeded(&self) -> bool {
        self.models.iter().all(|m| m.status == ModelStatus::Success)
    }

    pub fn status(&self) -> &'static str {
        if self.succeeded() {
            "success"
        } else if self.count(ModelStatus::Success) > 0 {
            "partial"
        } else {
            "failed"
        }
    }
}

/// Hooks for showing progress; the CLI draws a bar with them.
pub trait RunProgress: Send + Sync {
    fn started(&self, _model: &ModelName) {}
    fn finished(&self, _outcome: &ModelOutcome) {}
}

pub struct NoProgress;
impl RunProgress for NoProgress {}

pub struct RunOptions {
    pub selectors: Vec<String>,
    pub max_parallel: usize,
}

/// Runs the selection and returns one outcome per selected model. A failing model does not
/// stop its siblings; whatever reads it is skipped with the reason.
pub async fn run(
    catalog: Arc<Catalog>,
    graph: &ModelGraph,
    options: &RunOptions,
    progress: Arc<dyn RunProgress>,
) -> Result<RunReport> {
    let selected = graph.select(&options.selectors)?;
    let run_id = new_run_id();
    let started_at = Utc::now();
    // Models that keep history stamp their rows with the run.
    for udf in
        cdphub_functions::run_context::run_functions(Some((&run_id, started_at.timestamp_micros())))
    {
        catalog.ctx.register_udf(udf);
    }

    let mut pending: Vec<&Model> = graph
        .models
        .iter()
        .filter(|m| selected.contains(&m.name))
        .collect();
    let mut finished: BTreeMap<ModelName, ModelStatus> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut running: JoinSet<ModelOutcome> = JoinSet::new();

    loop {
        // Settle what can be settled: skip models whose upstream failed, start ready ones.
        let mut index = 0;
        while index < pending.len() {
            let model = pending[index];
            let upstream = &graph.upstream[&model.name];
            let blocked_by = upstream.iter().find(|dep| {
                matches!(
                    finished.get(*dep),
                    Some(ModelStatus::Failed | ModelStatus::Skipped)
                )
            });
            if let Some(dep) = blocked_by {
                let now = Utc::now();
                let outcome = ModelOutcome {
                    model: model.name.clone(),
                    status: ModelStatus::Skipped,
                    started_at: now,
                    finished_at: now,
                    rows_written: None,
                    delta_version: None,
                    error: Some(format!("skipped: upstream model {dep} did not succeed")),
                    tests: Vec::new(),
                };
                progress.finished(&outcome);
                finished.insert(model.name.clone(), ModelStatus::Skipped);
                outcomes.push(outcome);
                pending.remove(index);
                index = 0;
                continue;
            }
            let ready = upstream
                .iter()
                .all(|dep| !selected.contains(dep) || finished.contains_key(dep));
            if ready && running.len() < options.max_parallel {
                let model = pending.remove(index).clone();
                let catalog = catalog.clone();
                let raw_reads = graph.raw_reads[&model.name].clone();
                let run_id = run_id.clone();
                progress.started(&model.name);
                running
                    .spawn(async move { run_model(&catalog, &model, &raw_reads, &run_id).await });
                continue;
            }
            index += 1;
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let outcome = joined.map_err(|e| ModelError::Input {
            model: "(runner)".to_string(),
            message: format!("a model task stopped unexpectedly: {e}"),
        })?;
        progress.finished(&outcome);
        finished.insert(outcome.model.clone(), outcome.status.clone());
        outcomes.push(outcome);
    }

    Ok(RunReport {
        run_id,
        selectors: options.selectors.clone(),
        started_at,
        finished_at: Utc::now(),
        models: outcomes,
    })
}

fn new_run_id() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

async fn run_model(
    catalog: &Catalog,
    model: &Model,
    raw_reads: &BTreeSet<String>,
    run_id: &str,
) -> ModelOutcome {
    let started_at = Utc::now();
    let clock = Instant::now();
    let result = build_and_publish(catalog, model, raw_reads, run_id).await;
    let finished_at = started_at
        + chrono::Duration::from_std(clock.elapsed()).unwrap_or_else(|_| chrono::Duration::zero());
    match result {
        Ok(published) => ModelOutcome {
            model: model.name.clone(),
            status: ModelStatus::Success,
            started_at,
            finished_at,
            rows_written: Some(published.rows),
            delta_version: Some(published.version),
            error: None,
            tests: published.tests,
        },
        Err((error, tests)) => ModelOutcome {
            model: model.name.clone(),
            status: ModelStatus::Failed,
            started_at,
            finished_at,
            rows_written: None,
            delta_version: None,
            error: Some(error.to_string()),
            tests,
        },
    }
}

struct Published {
    rows: u64,
    version: u64,
    tests: Vec<TestOutcome>,
}

/// How this run's rows become the table: by committing the staged files themselves, or by
/// rewriting the table from them (an incremental model that replaces rows by key, or keeps
/// its whole table sorted for lookups).
enum Publication {
    Adopt(SaveMode),
    Rewrite(Arc<dyn TableProvider>),
}

async fn publication(
    catalog: &Catalog,
    model: &Model,
    rows: &Schema,
) -> datafusion::error::Result<Publication> {
    let settings = &model.settings;
    if settings.materialized == Materialization::Table {
        return Ok(Publication::Adopt(SaveMode::Overwrite));
    }
    let schema = catalog.schema(&model.name.schema);
    Ok(match schema.table(&model.name.table).await? {
        None => Publication::Adopt(SaveMode::Overwrite),
        // Appended files must have the table's columns; any change rewrites the table
        // (by name, new columns empty in the old rows).
        Some(existing)
            if settings.unique_key.is_empty()
                && settings.lookup_keys.is_empty()
                && same_columns(&existing.schema(), rows) =>
        {
            Publication::Adopt(SaveMode::Append)
        }
        Some(existing) => Publication::Rewrite(existing),
    })
}

/// Same names and types in the same order, string and binary encodings aside (a Delta scan
/// may return views where the query returned plain arrays).
fn same_columns(table: &Schema, rows: &Schema) -> bool {
    table.fields().len() == rows.fields().len()
        && table
            .fields()
            .iter()
            .zip(rows.fields())
            .all(|(a, b)| a.name() == b.name() && same_logical_type(a.data_type(), b.data_type()))
}

async fn build_and_publish(
    catalog: &Catalog,
    model: &Model,
    raw_reads: &BTreeSet<String>,
    run_id: &str,
) -> std::result::Result<Published, (ModelError, Vec<TestOutcome>)> {
    let name = model.name.to_string();
    let fail = |error: ModelError| (error, Vec::new());
    let execution = |source| ModelError::Execution {
        model: name.clone(),
        source,
    };
    check_raw_inputs(catalog, model, raw_reads).map_err(fail)?;
    let clock = Instant::now();

    // 1. Compute into a staged version of the table (invisible to its readers).
    let df = catalog
        .ctx
        .sql(&model.sql)
        .await
        .map_err(|e| fail(execution(e)))?;
    let schema = df.schema().as_arrow().clone();
    let layout_columns = [
        ("lookup-keys", &model.settings.lookup_keys),
        ("partition-by", &model.settings.partition_by),
    ];
    if let Some((setting, key)) = layout_columns.iter().find_map(|(setting, columns)| {
        columns
            .iter()
            .find(|key| schema.field_with_name(key).is_err())
            .map(|key| (setting, key))
    }) {
        return Err(fail(ModelError::Input {
            model: name.clone(),
            message: format!(
                "{setting} names `{key}`, which the query does not return\n  columns: {}\n  hint: fix {setting} in {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                model.path.with_extension("toml").display()
            ),
        }));
    }
    let publication = publication(catalog, model, &schema)
        .await
        .map_err(|e| fail(execution(e)))?;
    let (staged_plan, layout) = match publication {
        Publication::Adopt(_) => (
            sorted_for_lookups(model, df).map_err(|e| fail(execution(e)))?,
            layout(model),
        ),
        // Sorted and laid out when the whole table is rewritten.
        Publication::Rewrite(_) => (df, Layout::Scan),
    };
    let location = DeltaLocation::curated(&model.name.schema, &model.name.table);
    let staged = delta::stage(
        &catalog.lake,
        &location,
        run_id,
        staged_plan.logical_plan().clone(),
        catalog.ctx.state(),
        layout,
        &model.settings.partition_by,
    )
    .await
    .map_err(|e| fail(e.into()))?;
    let (rows, staged_table) = (staged.rows(), staged.table());

    let computed_ms = clock.elapsed().as_millis();
    // 2. Test the staged rows; any failure keeps the published version as it is.
    let tests = data_tests::compile(&model.name, &model.settings.tests);
    let outcomes =
        match data_tests::run(&catalog.ctx, &model.name, staged_table.clone(), &tests).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                staged.discard(&catalog.lake).await;
                return Err(fail(execution(e)));
            }
        };
    if let Some(bad) = outcomes.iter().find(|t| t.status != TestStatus::Pass) {
        let error = test_failure(&name, bad);
        staged.discard(&catalog.lake).await;
        return Err((error, outcomes));
    }

    let tested_ms = clock.elapsed().as_millis();
    // 3. Publish in one Delta commit and point the catalog at the new version.
    let published = match publication {
        Publication::Adopt(mode) => staged.publish(&catalog.lake, mode).await,
        Publication::Rewrite(existing) => {
            let rewritten = rewrite(catalog, model, &location, existing, staged_table).await;
            staged.discard(&catalog.lake).await;
            rewritten
        }
    };
    let table = published.map_err(|e| (ModelError::from(e), outcomes.clone()))?;
    let version = table.version().unwrap_or_default();
    let provider = delta::provider(&table, &name)
        .await
        .map_err(|e| (ModelError::from(e), outcomes.clone()))?;
    catalog.set_table(&model.name.schema, &model.name.table, provider);
    tracing::debug!(
        model = %model.name,
        computed_ms,
        tested_ms,
        published_ms = clock.elapsed().as_millis(),
        "model built"
    );
    Ok(Published {
        rows,
        version,
        tests: outcomes,
    })
}

fn layout(model: &Model) -> Layout {
    if model.settings.lookup_keys.is_empty() {
        Layout::Scan
    } else {
        Layout::Lookup
    }
}

fn test_failure(model: &str, bad: &TestOutcome) -> ModelError {
    match bad.status {
        TestStatus::Error => ModelError::Input {
            model: model.to_string(),
            message: format!(
                "data test `{}` could not run: {}\n  query: {}",
                bad.name, bad.detail, bad.query
            ),
        },
        _ => ModelError::DataTestFailed {
            model: model.to_string(),
            test: bad.name.clone(),
            failing_rows: bad.failing_rows,
            sample: bad.detail.clone(),
        },
    }
}

/// An incremental model's new table: the rows already published that this run does not
/// replace (by `unique-key`), plus this run's rows, sorted for lookups.
async fn rewrite(
    catalog: &Catalog,
    model: &Model,
    location: &DeltaLocation,
    existing: Arc<dyn TableProvider>,
    staged: Arc<dyn TableProvider>,
) -> std::result::Result<DeltaTable, LakeError> {
    let staged = catalog.ctx.read_table(staged)?;
    let existing = catalog.ctx.read_table(existing)?;
    let keys: Vec<&str> = model
        .settings
        .unique_key
        .iter()
        .map(String::as_str)
        .collect();
    let kept = if keys.is_empty() {
        existing
    } else {
        let new_keys = staged.clone().select_columns(&keys)?;
        existing.join(new_keys, JoinType::LeftAnti, &keys, &keys, None)?
    };
    let published = sorted_for_lookups(model, kept.union_by_name(staged)?)?;
    delta::overwrite(
        &catalog.lake,
        location,
        published.logical_plan().clone(),
        catalog.ctx.state(),
        layout(model),
        &model.settings.partition_by,
    )
    .await
}

/// Sorts by the model's `lookup-keys`, if any, so that each Parquet page covers a narrow
/// key range.
fn sorted_for_lookups(model: &Model, rows: DataFrame) -> datafusion::error::Result<DataFrame> {
    if model.settings.lookup_keys.is_empty() {
        return Ok(rows);
    }
    let order = model
        .settings
        .lookup_keys
        .iter()
        .map(|key| col(Column::new_unqualified(key)).sort(true, false))
        .collect();
    rows.sort(order)
}

/// A staging model whose raw source is broken fails with the source's own error.
fn check_raw_inputs(catalog: &Catalog, model: &Model, raw_reads: &BTreeSet<String>) -> Result<()> {
    for source in raw_reads {
        if let Some(problem) = catalog.problem_for(source) {
            return Err(ModelError::Input {
                model: model.name.to_string(),
                message: problem.error.to_string(),
            });
        }
        if catalog.empty_sources.contains(source) {
            return Err(ModelError::Input {
                model: model.name.to_string(),
                message: format!(
                    "raw source `{source}` has no Parquet files under raw/{source}/ in {}\n  hint: land files there, or run `cdphub demo generate`",
                    catalog.lake.url()
                ),
            });
        }
    }
    Ok(())
}
