//! Query results as a table, CSV, JSON lines or Parquet, streamed batch by batch.

use std::fs::File;
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use arrow::util::pretty::pretty_format_batches;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use futures::StreamExt;

use crate::app::OutputFormat;

/// Writes the result of `df` in `format`; returns the number of rows.
pub async fn write(
    df: DataFrame,
    format: OutputFormat,
    output: Option<&std::path::Path>,
    max_rows: usize,
) -> Result<u64> {
    let mut sink: Box<dyn Write + Send> = match output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => {
            if format == OutputFormat::Parquet && std::io::stdout().is_terminal() {
                bail!("Parquet is binary: pass --output <file> or redirect standard output");
            }
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        }
    };
    let schema = df.schema().as_arrow().clone();
    let mut stream = df.execute_stream().await?;
    let mut rows = 0u64;
    match format {
        OutputFormat::Table => {
            let mut shown: Vec<RecordBatch> = Vec::new();
            let mut kept = 0usize;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                if kept < max_rows {
                    let take = (max_rows - kept).min(batch.num_rows());
                    shown.push(batch.slice(0, take));
                    kept += take;
                }
            }
            if shown.is_empty() {
                shown.push(RecordBatch::new_empty(schema.into()));
            }
            writeln!(sink, "{}", pretty_format_batches(&shown)?)?;
            let more = if rows as usize > kept {
                format!(" (showing {kept}; use --max-rows or --format csv for all)")
            } else {
                String::new()
            };
            writeln!(sink, "{rows} row(s){more}")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(sink);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(sink);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(sink, schema.into(), None)?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.close()?;
        }
    }
    Ok(rows)
}
