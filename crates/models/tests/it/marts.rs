//! Builds every model of `sql/marts/` but the attribution marts (in dependency order, with
//! its data tests) on the fixture, then runs each `tests/marts/*.slt` against the result. A
//! file whose first line is `# as-of: YYYY-MM-DD` gets that `[analytics] as-of`; the others
//! use the default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cdphub_functions::{AnalyticsConfig, IdentityConfig};
use cdphub_lake::shared_subplans::{LakeQueryPlanner, ShareRepeatedSubplans};
use cdphub_lake::{CATALOG, CURATED_SCHEMAS};
use cdphub_models::data_tests::{self, TestStatus};
use cdphub_models::{ModelGraph, discover};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

#[path = "../../../functions/tests/it/slt_session.rs"]
mod slt_session;
use slt_session::{Session, any_types};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/marts")
}

/// A session like the CLI's: the cdphub catalog with the curated schemas, every function,
/// and repeated subqueries computed once.
fn session(analytics: &AnalyticsConfig) -> SessionContext {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, "public")
        .with_create_default_catalog_and_schema(false);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_query_planner(Arc::new(LakeQueryPlanner))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.add_analyzer_rule(Arc::new(ShareRepeatedSubplans));
    let catalog = Arc::new(MemoryCatalogProvider::new());
    for schema in CURATED_SCHEMAS.iter().chain(&["public"]) {
        catalog
            .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
            .unwrap();
    }
    ctx.register_catalog(CATALOG, catalog);
    cdphub_functions::register_all(&ctx, &IdentityConfig::default(), "test").unwrap();
    cdphub_functions::analytics::register(&ctx, analytics);
    ctx
}

/// Loads the fixture, then builds each mart the fixture does not provide, checking its
/// data tests as the runner would before publishing.
async fn build_marts(ctx: &SessionContext) -> Result<Vec<String>, DataFusionError> {
    let fixture = std::fs::read_to_string(fixtures().join("fixture.sql")).unwrap();
    for statement in fixture.split(";\n").filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim().starts_with("--"))
    }) {
        ctx.sql(statement).await?.collect().await?;
    }
    let config = cdphub_lake::Config::parse(
        &std::fs::read_to_string(repository().join("cdphub.toml")).unwrap(),
        Path::new("cdphub.toml"),
    )
    .unwrap();
    let sources: BTreeSet<String> = config.sources.keys().cloned().collect();
    let graph = ModelGraph::build(discover(&repository().join("sql")).unwrap(), &sources).unwrap();
    let mut built = Vec::new();
    let mut skipped = BTreeSet::new();
    for model in &graph.models {
        let name = &model.name;
        if name.schema != "marts" || ctx.table_exist(name.to_string().as_str())? {
            continue;
        }
        // The attribution marts read touchpoints, which this fixture does not have.
        let mut inputs_missing = false;
        for upstream in &graph.upstream[name] {
            inputs_missing |= !ctx.table_exist(upstream.to_string().as_str())?;
        }
        if inputs_missing {
            skipped.insert(name.to_string());
            continue;
        }
        let df = ctx.sql(&model.sql).await?;
        let planned = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        // Batches may differ from the plan in nullability; the data decides.
        let schema = batches.first().map_or(planned, |b| b.schema());
        let table = Arc::new(MemTable::try_new(schema, vec![batches])?);
        let tests = data_tests::compile(name, &model.settings.tests);
        for outcome in data_tests::run(ctx, name, table.clone(), &tests).await? {
            assert_eq!(
                outcome.status,
                TestStatus::Pass,
                "{name}: data test {} on the fixture: {}\n{}",
                outcome.name,
                outcome.query,
                outcome.detail
            );
        }
        ctx.catalog(CATALOG)
            .unwrap()
            .schema("marts")
            .unwrap()
            .register_table(name.table.clone(), table)?;
        built.push(name.to_string());
    }
    // Only the attribution marts, which crates/cli/tests/it/attribution.rs checks on demo data.
    let attribution: BTreeSet<String> = ATTRIBUTION_MARTS.iter().map(|m| m.to_string()).collect();
    assert_eq!(skipped, attribution, "marts left out of the fixture run");
    Ok(built)
}

const ATTRIBUTION_MARTS: [&str; 5] = [
    "marts.journey_events",
    "marts.journeys",
    "marts.attribution_credits",
    "marts.channel_attribution",
    "marts.campaign_performance",
];

fn as_of_header(file: &Path) -> AnalyticsConfig {
    let text = std::fs::read_to_string(file).unwrap();
    let as_of = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# as-of:"))
        .map(|date| cdphub_functions::analytics::parse_as_of(date).unwrap());
    AnalyticsConfig { as_of }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marts_on_the_hand_made_fixture() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "no .slt files in {}",
        fixtures().display()
    );
    let mut failures = Vec::new();
    for file in &files {
        let analytics = as_of_header(file);
        let mut runner = sqllogictest::Runner::new(|| {
            let analytics = analytics.clone();
            async move {
                let ctx = session(&analytics);
                let built = build_marts(&ctx).await?;
                // Every mart of sql/marts/ is built (customer_profiles comes from the fixture).
                for expected in [
                    "marts.rfm_scores",
                    "marts.customer_ltv",
                    "marts.audience_win_back",
                ] {
                    assert!(
                        built.iter().any(|b| b == expected),
                        "{expected} not built: {built:?}"
                    );
                }
                Ok::<_, DataFusionError>(Session { ctx })
            }
        });
        runner.with_column_validator(any_types);
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
