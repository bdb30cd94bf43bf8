//! `cdphub query`: one SQL statement against the catalog.

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use cdphub_lake::Catalog;

use super::Workspace;
use crate::app::QueryArgs;
use crate::output;

pub async fn query(workspace: &Workspace, args: &QueryArgs) -> Result<ExitCode> {
    let catalog = workspace.catalog().await?;
    let df = match catalog.ctx.sql(&args.sql).await {
        Ok(df) => df,
        Err(e) => return Err(explain_planning_error(&catalog, e)),
    };
    output::write(df, args.format, args.output.as_deref(), args.max_rows).await?;
    Ok(ExitCode::SUCCESS)
}

/// "table not found" on a raw source usually has a real cause worth showing.
pub fn explain_planning_error(
    catalog: &Catalog,
    error: datafusion::error::DataFusionError,
) -> anyhow::Error {
    let message = error.to_string();
    let mut hints = Vec::new();
    for problem in &catalog.source_problems {
        if message.contains(&format!("raw.{}", problem.source)) {
            hints.push(problem.error.to_string());
        }
    }
    for source in &catalog.empty_sources {
        if message.contains(&format!("raw.{source}")) {
            hints.push(format!(
                "raw source `{source}` has no Parquet files yet under raw/{source}/"
            ));
        }
    }
    if hints.is_empty() && message.contains("not found") {
        hints.push("`cdphub tables` lists the tables; names are schema-qualified (raw.x, staging.x, marts.x, hub.x)".to_string());
    }
    if hints.is_empty() {
        anyhow!(message)
    } else {
        anyhow!("{message}\n  hint: {}", hints.join("\n  hint: "))
    }
}
