//! `cdphub demo`: from nothing to queryable tables, with a short tour at the end.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use cdphub_datagen::{GenerateOptions, GenerateReport};
use futures::TryStreamExt;

use super::Workspace;
use crate::app::{DemoAction, DemoArgs, DemoDataArgs, ServeArgs};
use crate::output;
use crate::progress::GenerateBar;

const SAMPLE_QUERY: &str = "SELECT channel, sum(orders) AS orders, round(sum(revenue), 2) AS revenue \
FROM marts.daily_revenue GROUP BY channel ORDER BY revenue DESC";

pub async fn demo(workspace: &Workspace, args: DemoArgs) -> Result<ExitCode> {
    if let Some(DemoAction::Generate(data)) = args.action {
        generate(workspace, &data).await?;
        return Ok(ExitCode::SUCCESS);
    }
    workspace.lake.check_reachable().await?;
    if args.regenerate || !has_raw_data(workspace).await? {
        generate(workspace, &args.data).await?;
    } else {
        println!(
            "Raw data found in {}; reusing it (pass --regenerate to start over).",
            workspace.lake.url()
        );
    }

    let graph = workspace.graph()?;
    let catalog = workspace.catalog().await?;
    println!("\nRunning {} models...", graph.models.len());
    let report = super::run::run_models(workspace, &catalog, &graph, &[]).await?;
    if !report.succeeded() {
        return Ok(ExitCode::FAILURE);
    }

    println!("\nTables:");
    super::tables::print_tables(&super::tables::list(&catalog).await?);
    println!("\nSample query:\n  {SAMPLE_QUERY}\n");
    let df = catalog.ctx.sql(SAMPLE_QUERY).await?;
    output::write(df, crate::app::OutputFormat::Table, None, 20).await?;
    print_next_steps(workspace);
    if !args.no_serve {
        // The tour ends with every table served on localhost for BI tools and notebooks.
        drop(catalog);
        let server = super::serve::bind(
            workspace,
            &ServeArgs {
                port: args.port,
                host: None,
            },
        )
        .await?;
        super::serve::print_connection_help(&server, &workspace.project);
        server.run(super::serve::shutdown_signal()).await?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn has_raw_data(workspace: &Workspace) -> Result<bool> {
    let prefix = workspace.lake.path("raw");
    let first = workspace
        .lake
        .store()
        .list(Some(&prefix))
        .try_next()
        .await?;
    Ok(first.is_some())
}

async fn generate(workspace: &Workspace, data: &DemoDataArgs) -> Result<GenerateReport> {
    let options = GenerateOptions {
        scale: data.scale,
        seed: data.seed,
    };
    println!(
        "Generating demo data (scale {}, seed {}) into {}",
        data.scale,
        data.seed,
        workspace.lake.url()
    );
    let started = Instant::now();
    let bar = GenerateBar::new();
    let report = cdphub_datagen::generate(
        workspace.lake.store(),
        &workspace.lake.path(""),
        &options,
        &bar,
    )
    .await;
    bar.finish();
    let report = report?;
    println!(
        "{} persons generated in {:.1}s:",
        report.persons,
        started.elapsed().as_secs_f64()
    );
    for source in &report.sources {
        println!(
            "  raw/{:<16} {:>10} rows  {:>3} file(s)  {:>8.1} MiB",
            source.source,
            source.rows,
            source.files,
            source.bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!("  _truth/record_persons {:>8} rows", report.truth_rows);
    Ok(report)
}

fn print_next_steps(workspace: &Workspace) {
    let project = workspace.project.dir.display();
    println!(
        "\nWhat to try next:
  cdphub --project {project} models                      # the model graph
  cdphub --project {project} tables                      # every table and its row count
  cdphub --project {project} identity report             # persons, refused links, precision / recall
  cdphub --project {project} query \"SELECT * FROM marts.customer_profiles LIMIT 10\"
  cdphub --project {project} query \"SELECT * FROM marts.channel_attribution WHERE model = 'markov'\"
  cdphub --project {project} query \"SELECT * FROM hub.model_runs ORDER BY started_at DESC LIMIT 10\"
  cdphub --project {project} query --format csv \"SELECT * FROM staging.orders LIMIT 100\"
  Edit a model under {project}/sql/, then: cdphub --project {project} run --select <model>+"
    );
}
