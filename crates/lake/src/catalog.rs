//! One SQL catalog for every command: `raw.*` listing tables, curated Delta tables, `hub.*`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};

use crate::config::{Project, SourceConfig};
use crate::delta::{self, DeltaLocation};
use crate::error::{LakeError, Result};
use crate::join_planning::{BuildOnSmallerSide, CompactJoinBuildViews};
use crate::location::Lake;
use crate::raw::RawSource;
use crate::shared_subplans::{LakeQueryPlanner, ShareRepeatedSubplans};

pub const CATALOG: &str = "cdphub";
pub const RAW_SCHEMA: &str = "raw";
pub const HUB_SCHEMA: &str = "hub";
/// Schemas whose tables are Delta tables published by the model runner.
pub const CURATED_SCHEMAS: &[&str] = &["staging", "identity", "marts"];

/// A raw source that could not be registered, kept so that the model or query that needs it
/// can report the real cause (a corrupt file, drift) instead of "table not found".
#[derive(Debug)]
pub struct SourceProblem {
    pub source: String,
    pub error: LakeError,
}

/// The session every command uses, plus what is known about its tables.
pub struct Catalog {
    pub ctx: SessionContext,
    pub lake: Lake,
    pub raw_sources: BTreeMap<String, RawSource>,
    /// Configured sources that have no files yet.
    pub empty_sources: Vec<String>,
    pub source_problems: Vec<SourceProblem>,
}

impl Catalog {
    /// Builds the session: registers the lake's store, every raw source and every published table.
    pub async fn open(project: &Project, lake: Lake) -> Result<Self> {
        lake.check_reachable().await?;
        let ctx = new_session(&lake, project)?;
        let catalog = Arc::new(MemoryCatalogProvider::new());
        for schema in [RAW_SCHEMA, HUB_SCHEMA, "public"]
            .iter()
            .chain(CURATED_SCHEMAS)
        {
            catalog
                .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| LakeError::datafusion("register schema", e))?;
        }
        ctx.register_catalog(CATALOG, catalog);

        let mut this = Self {
            ctx,
            lake,
            raw_sources: BTreeMap::new(),
            empty_sources: Vec::new(),
            source_problems: Vec::new(),
        };
        this.register_raw_sources(project).await?;
        this.register_published_tables().await?;
        Ok(this)
    }

    pub fn schema(&self, name: &str) -> Arc<dyn SchemaProvider> {
        self.ctx
            .catalog(CATALOG)
            .and_then(|c| c.schema(name))
            .expect("schemas are registered when the catalog opens")
    }

    /// Puts (or replaces) a table under `schema.table`.
    pub fn set_table(&self, schema: &str, table: &str, provider: Arc<dyn TableProvider>) {
        let schema = self.schema(schema);
        // Replacing an entry: drop the old provider first; a missing one is fine.
        let _ = schema.deregister_table(table);
        let _ = schema.register_table(table.to_string(), provider);
    }

    pub fn problem_for(&self, source: &str) -> Option<&SourceProblem> {
        self.source_problems.iter().find(|p| p.source == source)
    }

    async fn register_raw_sources(&mut self, project: &Project) -> Result<()> {
        let lake = &self.lake;
        // Configured sources, plus folders under raw/ that no source claims: tables bulk-loaded
        // over Flight SQL (`CommandStatementIngest`) land there as plain, unpartitioned Parquet.
        let mut sources: Vec<(String, SourceConfig)> = project
            .config
            .sources
            .iter()
            .map(|(name, config)| (name.clone(), config.clone()))
            .collect();
        for folder in self.list_folders(RAW_SCHEMA).await? {
            let claimed = project
                .config
                .sources
                .iter()
                .any(|(name, config)| config.folder(name) == folder);
            if !claimed && !project.config.sources.contains_key(&folder) {
                sources.push((folder, SourceConfig::unpartitioned()));
            }
        }
        let inspected: Vec<(String, Result<Option<RawSource>>)> = futures::stream::iter(sources)
            .map(|(name, config)| async move {
                let outcome = RawSource::inspect(lake, &name, &config).await;
                (name, outcome)
            })
            .buffered(4)
            .collect()
            .await;
        for (name, outcome) in inspected {
            match outcome {
                Ok(Some(source)) => {
                    let provider = source.table_provider(&self.lake)?;
                    self.set_table(RAW_SCHEMA, &name, provider);
                    self.raw_sources.insert(name, source);
                }
                Ok(None) => self.empty_sources.push(name),
                Err(error) => self.source_problems.push(SourceProblem {
                    source: name,
                    error,
                }),
            }
        }
        Ok(())
    }

    async fn register_published_tables(&self) -> Result<()> {
        let mut locations = Vec::new();
        for schema in CURATED_SCHEMAS {
            for table in self.list_folders(&format!("curated/{schema}")).await? {
                locations.push((
                    schema.to_string(),
                    DeltaLocation::curated(schema, &table),
                    table,
                ));
            }
        }
        for table in self.list_folders("_hub").await? {
            locations.push((HUB_SCHEMA.to_string(), DeltaLocation::system(&table), table));
        }
        let lake = &self.lake;
        let opened: Vec<_> = futures::stream::iter(locations)
            .map(|(schema, location, table)| async move {
                let opened = delta::open(lake, &location, None).await?;
                let provider = match opened {
                    Some(t) => Some(delta::provider(&t, &location.sql_name).await?),
                    None => None,
                };
                Ok::<_, LakeError>((schema, table, provider))
            })
            .buffered(8)
            .try_collect()
            .await?;
        for (schema, table, provider) in opened {
            if let Some(provider) = provider {
                self.set_table(&schema, &table, provider);
            }
        }
        Ok(())
    }

    async fn list_folders(&self, relative: &str) -> Result<Vec<String>> {
        let prefix = self.lake.path(relative);
        let listing = match self.lake.store().list_with_delimiter(Some(&prefix)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(LakeError::object_store(&prefix, e)),
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|name| crate::config::is_identifier(name))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Joins whose build side has up to 1Mi rows / 128 MiB hash it once and probe in every partition
/// (DataFusion's defaults, 128Ki rows / 1 MiB, hash-repartition both sides instead: the 4.8M
/// record_links of scale 1 for each join with the orders, about 15% of the marts' time on 2
/// cores). DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD[_ROWS] still override.
fn broadcast_mid_sized_join_sides(config: &mut SessionConfig) {
    let optimizer = &mut config.options_mut().optimizer;
    if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD_ROWS").is_none()
    {
        optimizer.hash_join_single_partition_threshold_rows = 1 << 20;
    }
    if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD").is_none() {
        optimizer.hash_join_single_partition_threshold = 128 << 20;
    }
}

/// DataFusion's physical optimizer rules, with [`BuildOnSmallerSide`] after its join selection
/// and [`CompactJoinBuildViews`] before the final filter pushdown (which wires the joins'
/// dynamic filters into their probe sides).
fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let after_join_selection = rules
        .iter()
        .position(|rule| rule.name() == "join_selection")
        .map_or(rules.len(), |position| position + 1);
    rules.insert(after_join_selection, Arc::new(BuildOnSmallerSide));
    let position = rules
        .iter()
        .position(|rule| rule.name() == "FilterPushdown(Post)")
        .unwrap_or(rules.len());
    rules.insert(position, Arc::new(CompactJoinBuildViews));
    rules
}

/// A session with the lake's store registered, `information_schema` on and cdphub's SQL
/// functions registered. The query planner knows Delta's nodes (publishing a query result
/// plans Delta's own write nodes), and a subquery read more than once is computed once.
pub fn new_session(lake: &Lake, project: &Project) -> Result<SessionContext> {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = project.config.run.memory_limit {
        // First come, first served: one big sort may take what it needs (a fair split across
        // parallel models starves it); the top consumers are named on failure.
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
            GreedyMemoryPool::new(limit),
            NonZeroUsize::new(3).expect("3 > 0"),
        )));
    }
    let runtime = runtime
        .build_arc()
        .map_err(|e| LakeError::datafusion("create runtime", e))?;
    runtime.register_object_store(&lake.store_root_url(), lake.store());
    // DataFusion's own knobs come from DATAFUSION_* variables (for example
    // DATAFUSION_EXECUTION_TARGET_PARTITIONS), as in every DataFusion tool.
    let mut config = SessionConfig::from_env()
        .map_err(|e| LakeError::datafusion("read the DATAFUSION_* settings", e))?;
    broadcast_mid_sized_join_sides(&mut config);
    let config = config
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, "public")
        .with_create_default_catalog_and_schema(false);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_query_planner(Arc::new(LakeQueryPlanner))
        .with_physical_optimizer_rules(physical_optimizer_rules())
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.add_analyzer_rule(Arc::new(ShareRepeatedSubplans));
    let origin = project.config_path.display().to_string();
    cdphub_functions::register_all(&ctx, &project.config.identity, &origin)
        .map_err(|e| crate::config::identity_config_error(&project.config_path, e))?;
    cdphub_functions::analytics::register(&ctx, &project.config.analytics);
    cdphub_functions::register_attribution(&ctx, &project.config.attribution, &origin)
        .map_err(|e| crate::config::identity_config_error(&project.config_path, e))?;
    Ok(ctx)
}
