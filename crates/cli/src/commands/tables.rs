//! `cdphub tables`: every table of the catalog with its kind and row count.

use std::process::ExitCode;

use anyhow::Result;
use cdphub_lake::{CURATED_SCHEMAS, Catalog, HUB_SCHEMA, RAW_SCHEMA};

use super::Workspace;

pub struct TableInfo {
    pub name: String,
    pub kind: &'static str,
    pub rows: u64,
}

pub async fn tables(workspace: &Workspace) -> Result<ExitCode> {
    let catalog = workspace.catalog().await?;
    let tables = list(&catalog).await?;
    if tables.is_empty() {
        println!("The lake at {} has no tables yet.", catalog.lake.url());
        println!("  try: cdphub demo generate --scale 0.1, then cdphub run");
    } else {
        print_tables(&tables);
    }
    for source in &catalog.empty_sources {
        println!("raw.{source}: no files yet under raw/{source}/");
    }
    for problem in &catalog.source_problems {
        eprintln!("raw.{}: {}", problem.source, problem.error);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_tables(tables: &[TableInfo]) {
    let width = tables
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:<12}  {:>12}", "table", "kind", "rows");
    for table in tables {
        println!(
            "{:<width$}  {:<12}  {:>12}",
            table.name, table.kind, table.rows
        );
    }
}

/// Tables in schema order (raw, staging, identity, marts, hub), with their row counts.
pub async fn list(catalog: &Catalog) -> Result<Vec<TableInfo>> {
    let schemas = [RAW_SCHEMA]
        .iter()
        .chain(CURATED_SCHEMAS)
        .chain([HUB_SCHEMA].iter());
    let mut out = Vec::new();
    for schema in schemas {
        let mut names = catalog.schema(schema).table_names();
        names.sort();
        for table in names {
            let name = format!("{schema}.{table}");
            let rows = catalog.ctx.table(name.as_str()).await?.count().await? as u64;
            let kind = match *schema {
                RAW_SCHEMA => "raw parquet",
                HUB_SCHEMA => "system delta",
                _ => "delta",
            };
            out.push(TableInfo { name, kind, rows });
        }
    }
    Ok(out)
}
