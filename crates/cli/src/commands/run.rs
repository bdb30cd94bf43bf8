//! `cdphub run`: run the models and record the run in hub.*.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use cdphub_lake::Catalog;
use cdphub_models::{ModelStatus, RunOptions, RunReport, history};

use super::Workspace;
use crate::progress::RunBar;

pub async fn run(workspace: &Workspace, selectors: &[String]) -> Result<ExitCode> {
    let graph = workspace.graph()?;
    let catalog = workspace.catalog().await?;
    let report = run_models(workspace, &catalog, &graph, selectors).await?;
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs, records and prints the summary; shared with `cdphub demo`.
pub async fn run_models(
    workspace: &Workspace,
    catalog: &Arc<Catalog>,
    graph: &cdphub_models::ModelGraph,
    selectors: &[String],
) -> Result<RunReport> {
    let options = RunOptions {
        selectors: selectors.to_vec(),
        max_parallel: workspace.project.config.run.max_parallel_models,
    };
    let selected = graph.select(selectors)?.len();
    let bar = Arc::new(RunBar::new(selected as u64));
    let report = cdphub_models::run(catalog.clone(), graph, &options, bar.clone()).await?;
    bar.finish();
    history::record(catalog, &report).await?;
    print_summary(&report);
    Ok(report)
}

fn print_summary(report: &RunReport) {
    let seconds = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    println!(
        "run {}: {} succeeded, {} failed, {} skipped in {seconds:.1}s",
        report.run_id,
        report.count(ModelStatus::Success),
        report.count(ModelStatus::Failed),
        report.count(ModelStatus::Skipped),
    );
    for outcome in &report.models {
        if let Some(error) = &outcome.error {
            let label = outcome.status.as_str().to_uppercase();
            eprintln!("\n{label} {}: {error}", outcome.model);
        }
    }
}
