//! `cdphub identity report`: how the stitch went, and how good it is against the demo's
//! ground truth when the lake has one.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::util::pretty::pretty_format_batches;
use cdphub_datagen::TRUTH_FOLDER;
use cdphub_lake::Catalog;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;
use serde::Serialize;

use super::Workspace;
use crate::app::{IdentityAction, IdentityArgs, ReportFormat};

const TRUTH_TABLE: &str = "truth_record_persons";

pub async fn identity(workspace: &Workspace, args: IdentityArgs) -> Result<ExitCode> {
    match args.action {
        IdentityAction::Report(report) => {
            let catalog = workspace.catalog().await?;
            for table in ["identity.identifiers", "identity.record_links"] {
                if catalog.ctx.table_exist(table).unwrap_or(false) {
                    continue;
                }
                bail!(
                    "{table} does not exist in the lake at {}; run `cdphub run --select +identity` first",
                    catalog.lake.url()
                );
            }
            let quality = quality(&catalog).await?;
            match report.format {
                ReportFormat::Json => {
                    println!("{}", serde_json::to_string_pretty(&quality)?);
                }
                ReportFormat::Text => {
                    print_report(&catalog, report.largest, quality.as_ref()).await?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn table(catalog: &Catalog, sql: &str) -> Result<String> {
    let batches = catalog.ctx.sql(sql).await?.collect().await?;
    Ok(pretty_format_batches(&batches)?.to_string())
}

async fn print_report(catalog: &Catalog, largest: usize, quality: Option<&Quality>) -> Result<()> {
    println!("Identity report for {}\n", catalog.lake.url());
    println!("Identifiers by status:");
    println!(
        "{}\n",
        table(
            catalog,
            "SELECT id_type, status, count(*) AS identifiers FROM identity.identifiers \
             GROUP BY id_type, status ORDER BY id_priority(id_type), status",
        )
        .await?
    );
    println!("Persons by cluster size (identifiers per person):");
    println!(
        "{}\n",
        table(
            catalog,
            "WITH sizes AS (SELECT unified_id, count(*) AS n FROM identity.id_map GROUP BY unified_id) \
             SELECT CASE WHEN n = 1 THEN '1' WHEN n = 2 THEN '2' WHEN n <= 5 THEN '3-5' \
                         WHEN n <= 10 THEN '6-10' WHEN n <= 50 THEN '11-50' ELSE '51+' END AS identifiers, \
                    count(*) AS persons, min(n) AS smallest \
             FROM sizes GROUP BY 1 ORDER BY smallest",
        )
        .await?
    );
    println!("Largest persons:");
    println!(
        "{}\n",
        table(
            catalog,
            &format!(
                "SELECT unified_id, count(*) AS identifiers, \
                        sum(CASE WHEN id_type = 'customer_id' THEN 1 ELSE 0 END) AS customer_ids, \
                        sum(CASE WHEN id_type = 'email' THEN 1 ELSE 0 END) AS emails, \
                        sum(CASE WHEN id_type = 'phone' THEN 1 ELSE 0 END) AS phones, \
                        sum(CASE WHEN id_type = 'anonymous_id' THEN 1 ELSE 0 END) AS cookies, \
                        sum(CASE WHEN id_type = 'device_id' THEN 1 ELSE 0 END) AS devices \
                 FROM identity.id_map GROUP BY unified_id \
                 ORDER BY identifiers DESC, unified_id LIMIT {largest}"
            ),
        )
        .await?
    );
    println!("Links the rules refused or set aside (a sample per reason kind):");
    println!(
        "{}\n",
        table(
            catalog,
            "SELECT status, id_type, count(*) AS identifiers, min(id_value) AS example, min(reason) AS example_reason \
             FROM identity.identifiers WHERE status <> 'linked' \
             GROUP BY status, id_type ORDER BY status, id_priority(id_type)",
        )
        .await?
    );
    match quality {
        Some(q) => {
            println!("Against the ground truth ({TRUTH_FOLDER}), pairwise over records:");
            println!(
                "  precision {:.5}  ({} true of {} predicted pairs)",
                q.precision, q.true_pairs, q.predicted_pairs
            );
            println!(
                "  recall    {:.5}  ({} of {} pairs of resolvable records)",
                q.recall, q.true_resolvable_pairs, q.resolvable_pairs
            );
            println!("  F1        {:.5}", q.f1);
            println!(
                "  records: {} in the truth, {} linked to a person",
                q.records, q.linked_records
            );
        }
        None => {
            println!("No ground truth at {TRUTH_FOLDER}: precision and recall need the demo data.")
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Quality {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub true_pairs: f64,
    pub predicted_pairs: f64,
    pub true_resolvable_pairs: f64,
    pub resolvable_pairs: f64,
    pub records: f64,
    pub linked_records: f64,
}

/// Pairwise precision over every linked record, recall over pairs of resolvable records.
async fn quality(catalog: &Catalog) -> Result<Option<Quality>> {
    let folder = catalog.lake.path(TRUTH_FOLDER);
    let mut listing = catalog.lake.store().list(Some(&folder));
    if listing.next().await.is_none() {
        return Ok(None);
    }
    let url = catalog.lake.folder_url(TRUTH_FOLDER);
    catalog
        .ctx
        .register_parquet(
            format!("cdphub.public.{TRUTH_TABLE}"),
            url.as_str(),
            ParquetReadOptions::default(),
        )
        .await
        .with_context(|| format!("reading the ground truth at {url}"))?;
    let sql = format!(
        "WITH joined AS ( \
             SELECT t.person_id, t.resolvable, l.unified_id \
             FROM public.{TRUTH_TABLE} AS t \
             LEFT JOIN identity.record_links AS l ON l.source = t.source AND l.record_id = t.record_id), \
         cells AS ( \
             SELECT unified_id, person_id, CAST(count(*) AS DOUBLE) AS n, \
                    CAST(sum(CASE WHEN resolvable THEN 1 ELSE 0 END) AS DOUBLE) AS nr \
             FROM joined WHERE unified_id IS NOT NULL GROUP BY unified_id, person_id), \
         clusters AS ( \
             SELECT CAST(count(*) AS DOUBLE) AS n FROM joined WHERE unified_id IS NOT NULL GROUP BY unified_id), \
         persons AS ( \
             SELECT CAST(sum(CASE WHEN resolvable THEN 1 ELSE 0 END) AS DOUBLE) AS nr FROM joined GROUP BY person_id) \
         SELECT \
             (SELECT sum(n * (n - 1) / 2) FROM cells) AS true_pairs, \
             (SELECT sum(n * (n - 1) / 2) FROM clusters) AS predicted_pairs, \
             (SELECT sum(nr * (nr - 1) / 2) FROM cells) AS true_resolvable_pairs, \
             (SELECT sum(nr * (nr - 1) / 2) FROM persons) AS resolvable_pairs, \
             (SELECT CAST(count(*) AS DOUBLE) FROM joined) AS records, \
             (SELECT CAST(count(unified_id) AS DOUBLE) FROM joined) AS linked_records"
    );
    let batches = catalog.ctx.sql(&sql).await?.collect().await?;
    let value = |name: &str| -> Result<f64> { first_f64(&batches, name) };
    let (true_pairs, predicted_pairs) = (value("true_pairs")?, value("predicted_pairs")?);
    let (true_resolvable_pairs, resolvable_pairs) =
        (value("true_resolvable_pairs")?, value("resolvable_pairs")?);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 1.0 };
    let precision = ratio(true_pairs, predicted_pairs);
    let recall = ratio(true_resolvable_pairs, resolvable_pairs);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Ok(Some(Quality {
        precision,
        recall,
        f1,
        true_pairs,
        predicted_pairs,
        true_resolvable_pairs,
        resolvable_pairs,
        records: value("records")?,
        linked_records: value("linked_records")?,
    }))
}

fn first_f64(batches: &[RecordBatch], name: &str) -> Result<f64> {
    let batch = batches
        .first()
        .context("the quality query returned no rows")?;
    let column = batch
        .column_by_name(name)
        .with_context(|| format!("no column {name}"))?;
    let column = cast(column, &DataType::Float64)?;
    let values = column
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64");
    Ok(if values.is_null(0) {
        0.0
    } else {
        values.value(0)
    })
}
