//! `cdphub export audience <name> --to <url>`: an audience's people, with only the contact
//! fields their consent purpose allows, as CSV or Parquet on any store the lake supports.

use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use cdphub_lake::Lake;
use cdphub_lake::config::LakeConfig;
use cdphub_models::Model;
use cdphub_models::audience::{self, CONSENT_TABLE};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;

use super::Workspace;
use crate::app::{ExportAction, ExportArgs, ExportFormat};
use crate::progress::rows_bar;

pub async fn export(workspace: &Workspace, args: ExportArgs) -> Result<ExitCode> {
    match args.action {
        ExportAction::Audience(audience) => {
            export_audience(workspace, &audience.name, &audience.to, audience.format).await
        }
    }
}

async fn export_audience(
    workspace: &Workspace,
    name: &str,
    to: &str,
    format: ExportFormat,
) -> Result<ExitCode> {
    let graph = workspace.graph()?;
    let audiences: Vec<&Model> = graph
        .models
        .iter()
        .filter(|m| m.settings.audience.is_some())
        .collect();
    let wanted = name.trim();
    let Some(model) = audiences.iter().find(|m| {
        audience::export_name(&m.name) == wanted
            || m.name.table == wanted
            || m.name.to_string() == wanted
    }) else {
        let available: Vec<&str> = audiences
            .iter()
            .map(|m| audience::export_name(&m.name))
            .collect();
        bail!(
            "unknown audience `{wanted}`; the audiences are: {} (models in sql/{}/)",
            if available.is_empty() {
                "none yet".to_string()
            } else {
                available.join(", ")
            },
            audience::AUDIENCE_FOLDER.join("/")
        );
    };
    let purpose = &model
        .settings
        .audience
        .as_ref()
        .expect("filtered on audience settings")
        .purpose;
    let contacts = audience::contact_fields(purpose).expect("purpose checked at discovery");
    let export_name = audience::export_name(&model.name);
    let (store, path, shown) = destination(workspace, to, export_name, format)?;

    let catalog = workspace.catalog().await?;
    let table = model.name.to_string();
    if !catalog.ctx.table_exist(table.as_str())? {
        bail!("{table} has not been built yet: run `cdphub run --select +{table}` first");
    }
    let columns = catalog.ctx.table(table.as_str()).await?.schema().clone();
    for field in contacts {
        if columns.field_with_unqualified_name(field).is_err() {
            bail!(
                "{table} ({}) has no `{field}` column: a {purpose} audience must select it",
                model.path.display()
            );
        }
    }
    // Consent is checked again here: the table was tested when it was built, but consent
    // may have been revoked by a later run of marts.customer_consents.
    let mut select = vec!["a.unified_id".to_string()];
    select.extend(contacts.iter().map(|c| format!("a.{c}")));
    let mut conditions = vec!["c.granted".to_string()];
    conditions.extend(contacts.iter().map(|c| format!("a.{c} IS NOT NULL")));
    let sql = format!(
        "SELECT {} FROM {table} AS a JOIN {CONSENT_TABLE} AS c \
         ON c.unified_id = a.unified_id AND c.purpose = '{purpose}' \
         WHERE {} ORDER BY a.unified_id",
        select.join(", "),
        conditions.join(" AND ")
    );
    let listed = catalog.ctx.table(table.as_str()).await?.count().await? as u64;
    let df = catalog.ctx.sql(&sql).await?;
    let total = df.clone().count().await? as u64;

    let bar = rows_bar(total, &format!("export {export_name}"));
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await?;
    let mut written = 0u64;
    let write_error = |e: &dyn std::fmt::Display| anyhow!("writing {shown}: {e}");
    match format {
        ExportFormat::Csv => {
            let mut writer = BufWriter::new(store, path);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                writer
                    .put(csv_bytes(&batch, written == 0)?)
                    .await
                    .map_err(|e| write_error(&e))?;
                written += batch.num_rows() as u64;
                bar.set_position(written);
            }
            if written == 0 {
                writer
                    .put(csv_bytes(&RecordBatch::new_empty(schema), true)?)
                    .await
                    .map_err(|e| write_error(&e))?;
            }
            futures::future::poll_fn(|cx| {
                tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut writer), cx)
            })
            .await
            .map_err(|e| write_error(&e))?;
        }
        ExportFormat::Parquet => {
            let mut writer = AsyncArrowWriter::try_new(BufWriter::new(store, path), schema, None)?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                writer.write(&batch).await.map_err(|e| write_error(&e))?;
                written += batch.num_rows() as u64;
                bar.set_position(written);
            }
            writer.close().await.map_err(|e| write_error(&e))?;
        }
    }
    bar.finish_and_clear();
    println!(
        "exported {written} of the {listed} people of audience {export_name} ({}) to {shown}",
        select
            .iter()
            .map(|c| c.trim_start_matches("a."))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if listed > written {
        println!(
            "  {} left out: no {purpose} consent in {CONSENT_TABLE} now, or no {}",
            listed - written,
            contacts.join(" / ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn csv_bytes(batch: &RecordBatch, header: bool) -> Result<Bytes> {
    let mut buffer = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(header)
            .build(&mut buffer);
        writer.write(batch)?;
    }
    Ok(Bytes::from(buffer))
}

/// The store and path to write to, and how to name it to the user. `to` is a file path or
/// URL, or a folder ending in `/` (the file is then `<audience>.<format>`). Local paths are
/// relative to the current directory; `s3://` uses the lake's `[lake.s3]` settings.
fn destination(
    workspace: &Workspace,
    to: &str,
    name: &str,
    format: ExportFormat,
) -> Result<(Arc<dyn ObjectStore>, Path, String)> {
    let to = to.trim();
    if to.is_empty() {
        bail!("--to is empty: give a file path or URL, e.g. --to exports/{name}.csv");
    }
    if to.starts_with("memory:") {
        bail!(
            "--to {to}: a memory:// store disappears when cdphub exits; export to a file path, file:// or s3://"
        );
    }
    let extension = match format {
        ExportFormat::Csv => "csv",
        ExportFormat::Parquet => "parquet",
    };
    let target = if to.ends_with('/') {
        format!("{to}{name}.{extension}")
    } else {
        to.to_string()
    };
    let (folder, file) = match target.rsplit_once('/') {
        Some((folder, file)) if !folder.ends_with(':') && !folder.ends_with("//") => {
            (folder.to_string(), file.to_string())
        }
        Some((folder, _)) => bail!("--to {to}: name a file or a folder below {folder}/"),
        None => (".".to_string(), target.clone()),
    };
    let folder = if folder.is_empty() {
        "/".to_string()
    } else {
        folder
    };
    let config = LakeConfig {
        url: folder,
        s3: workspace.project.config.lake.s3.clone(),
    };
    let cwd = std::env::current_dir().context("the current directory")?;
    let lake = Lake::open(&config, &cwd).with_context(|| format!("--to {to}"))?;
    let shown = format!("{}{file}", lake.url());
    Ok((lake.store(), lake.path(&file), shown))
}
