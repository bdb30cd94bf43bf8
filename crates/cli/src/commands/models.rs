//! `cdphub models`: the graph as text or Graphviz.

use std::process::ExitCode;

use anyhow::Result;

use super::Workspace;
use crate::app::GraphFormat;

pub fn models(workspace: &Workspace, format: GraphFormat) -> Result<ExitCode> {
    let graph = workspace.graph()?;
    match format {
        GraphFormat::Text => {
            if graph.models.is_empty() {
                println!(
                    "No models under {}: add sql/<schema>/<name>.sql files.",
                    workspace.project.models_dir().display()
                );
            }
            for model in &graph.models {
                let mut reads: Vec<String> = graph.raw_reads[&model.name]
                    .iter()
                    .map(|s| format!("raw.{s}"))
                    .collect();
                reads.extend(graph.upstream[&model.name].iter().map(ToString::to_string));
                let path = model
                    .path
                    .strip_prefix(&workspace.project.dir)
                    .unwrap_or(&model.path);
                println!("{}  ({})", model.name, path.display());
                if let Some(description) = &model.settings.description {
                    println!("    {description}");
                }
                println!(
                    "    reads: {}",
                    if reads.is_empty() {
                        "-".to_string()
                    } else {
                        reads.join(", ")
                    }
                );
            }
        }
        GraphFormat::Dot => {
            println!("digraph models {{\n  rankdir=LR;");
            for model in &graph.models {
                for source in &graph.raw_reads[&model.name] {
                    println!("  \"raw.{source}\" -> \"{}\";", model.name);
                }
                for dep in &graph.upstream[&model.name] {
                    println!("  \"{dep}\" -> \"{}\";", model.name);
                }
            }
            println!("}}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
