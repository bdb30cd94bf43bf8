//! One module per subcommand; shared set-up (project, lake, catalog, graph) lives here.

mod demo;
mod export;
mod identity;
mod models;
mod query;
mod run;
mod serve;
mod tables;
mod user;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use cdphub_lake::{Catalog, Lake, Overrides, Project};
use cdphub_models::ModelGraph;

use crate::app::{Cli, Command};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let workspace = Workspace::load(&cli)?;
    match cli.command {
        Command::Demo(args) => demo::demo(&workspace, args).await,
        Command::Run(args) => run::run(&workspace, &args.select).await,
        Command::Models(args) => models::models(&workspace, args.format),
        Command::Tables => tables::tables(&workspace).await,
        Command::Query(args) => query::query(&workspace, &args).await,
        Command::Identity(args) => identity::identity(&workspace, args).await,
        Command::Serve(args) => serve::serve(&workspace, &args).await,
        Command::User(args) => user::user(&workspace, args.action),
        Command::Export(args) => export::export(&workspace, args).await,
    }
}

/// The project and its lake, as every command sees them.
pub struct Workspace {
    pub project: Project,
    pub lake: Lake,
}

impl Workspace {
    fn load(cli: &Cli) -> Result<Self> {
        let overrides = Overrides {
            lake: cli.lake.clone(),
        };
        let project = Project::load(&cli.project, &overrides)?;
        let lake = Lake::open(&project.config.lake, &project.dir)?;
        Ok(Self { project, lake })
    }

    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        Ok(Arc::new(
            Catalog::open(&self.project, self.lake.clone()).await?,
        ))
    }

    pub fn graph(&self) -> Result<ModelGraph> {
        let models = cdphub_models::discover(&self.project.models_dir())?;
        let sources: BTreeSet<String> = self.project.config.sources.keys().cloned().collect();
        Ok(ModelGraph::build(models, &sources)?)
    }
}
