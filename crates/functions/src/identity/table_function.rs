//! `stitch(links_table [, previous_table [, rules_json]])`: the identity stitch as a SQL
//! table function, so analysts can re-run it on their own links or with other rules.
//!
//! - `links_table` has `id_type, id_value, linked_type, linked_value`: identifiers seen on
//!   one record (a row linking an identifier to itself just declares it).
//! - `previous_table` (optional, `''` for none) has `id_type, id_value, unified_id,
//!   unified_since` from an earlier stitch; people keep those ids. A table that does not
//!   exist yet (the first run) counts as empty.
//! - `rules_json` overrides keys of the `[identity]` config, e.g. `'{"limits": {"email": 1}}'`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringBuilder, StringViewArray, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, TableReference, plan_datafusion_err, plan_err};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableType, cast, col};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;

use crate::config::{IdentityConfig, StitchRules};
use crate::error::FunctionError;
use crate::identity::stitch::{IdentityGraph, PreviousId, Stitched};

pub const LINK_COLUMNS: [&str; 4] = ["id_type", "id_value", "linked_type", "linked_value"];
const PREVIOUS_COLUMNS: [&str; 3] = ["id_type", "id_value", "unified_id"];
const OUTPUT_BATCH_ROWS: usize = 65_536;

/// The output schema of `stitch(...)`: one row per identifier.
pub fn stitch_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id_type", DataType::Utf8, false),
        Field::new("id_value", DataType::Utf8, false),
        Field::new("unified_id", DataType::Utf8, true),
        Field::new("unified_since", ts, true),
        Field::new("previous_unified_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("cluster_size", DataType::UInt32, false),
    ]))
}

#[derive(Debug)]
pub struct StitchFunction {
    config: IdentityConfig,
}

impl StitchFunction {
    pub fn new(config: IdentityConfig) -> Self {
        Self { config }
    }
}

fn text_argument(expr: &Expr, position: &str) -> Result<Option<String>> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v),
            _,
        ) => Ok(v.clone().filter(|s| !s.trim().is_empty())),
        Expr::Literal(ScalarValue::Null, _) => Ok(None),
        other => plan_err!(
            "stitch: the {position} argument must be a quoted string, got {other}; e.g. stitch('identity.links', 'identity.identifiers')"
        ),
    }
}

impl TableFunctionImpl for StitchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 3 {
            return plan_err!(
                "stitch takes 1 to 3 arguments: stitch('<links table>' [, '<previous ids table>' [, '<rules as JSON>']]), got {}",
                exprs.len()
            );
        }
        let Some(links) = text_argument(&exprs[0], "first")? else {
            return plan_err!("stitch: name the links table, e.g. stitch('identity.links')");
        };
        let previous = exprs
            .get(1)
            .map(|e| text_argument(e, "second"))
            .transpose()?
            .flatten();
        let rules = match exprs
            .get(2)
            .map(|e| text_argument(e, "third"))
            .transpose()?
            .flatten()
        {
            Some(json) => StitchRules::with_overrides(&self.config, &json)?,
            None => StitchRules::compile(&self.config, "cdphub.toml")?,
        };
        Ok(Arc::new(StitchTable {
            links: TableReference::from(links.as_str()),
            previous: previous.map(|p| TableReference::from(p.as_str())),
            rules,
        }))
    }
}

#[derive(Debug)]
struct StitchTable {
    links: TableReference,
    previous: Option<TableReference>,
    rules: StitchRules,
}

impl StitchTable {
    /// Streams the named columns of `table` (as text), batch by batch, into `each`.
    async fn read(
        state: &SessionState,
        table: &TableReference,
        columns: &[&str],
        extra: Option<&str>,
        mut each: impl FnMut(&[StringViewArray], Option<&TimestampMicrosecondArray>),
    ) -> Result<bool> {
        let schema = state.schema_for_ref(table.clone())?;
        let Some(provider) = schema.table(table.table()).await? else {
            return Ok(false);
        };
        let available = provider.schema();
        for column in columns.iter().chain(extra.iter()) {
            if available.field_with_name(column).is_err() {
                return Err(FunctionError::StitchInput {
                    table: table.to_string(),
                    message: format!("has no column `{column}`; it needs {}", columns.join(", ")),
                }
                .into());
            }
        }
        let mut projection: Vec<Expr> = columns
            .iter()
            .map(|c| cast(col(*c), DataType::Utf8View).alias(*c))
            .collect();
        if let Some(ts) = extra {
            projection.push(
                cast(
                    col(ts),
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                )
                .alias(ts),
            );
        }
        let plan = LogicalPlanBuilder::scan(table.clone(), provider_as_source(provider), None)?
            .project(projection)?
            .build()?;
        let physical = state.create_physical_plan(&plan).await?;
        let mut stream = execute_stream(physical, state.task_ctx())?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            // Views: casting the lake's Utf8View columns to Utf8 would copy every string.
            let strings: Vec<StringViewArray> = (0..columns.len())
                .map(|i| {
                    batch
                        .column(i)
                        .as_any()
                        .downcast_ref::<StringViewArray>()
                        .expect("projected as Utf8View")
                        .clone()
                })
                .collect();
            let ts = extra.map(|_| {
                batch
                    .column(columns.len())
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .expect("projected as timestamp")
                    .clone()
            });
            each(&strings, ts.as_ref());
        }
        Ok(true)
    }
}

#[async_trait]
impl TableProvider for StitchTable {
    fn schema(&self) -> SchemaRef {
        stitch_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| plan_datafusion_err!("stitch needs a full DataFusion session"))?;
        // The stitch is global (any link may join any two people), so it runs to the end
        // here and the plan serves the result.
        let started = std::time::Instant::now();
        let mut graph = IdentityGraph::new();
        let found = Self::read(state, &self.links, &LINK_COLUMNS, None, |cols, _| {
            let [a_type, a_value, b_type, b_value] = cols else {
                unreachable!("four link columns")
            };
            for row in 0..a_type.len() {
                if a_type.is_null(row) || a_value.is_null(row) {
                    continue;
                }
                if b_type.is_null(row) || b_value.is_null(row) {
                    graph.node(a_type.value(row), a_value.value(row));
                } else {
                    graph.link(
                        a_type.value(row),
                        a_value.value(row),
                        b_type.value(row),
                        b_value.value(row),
                    );
                }
            }
        })
        .await?;
        if !found {
            return plan_err!(
                "stitch: links table {} does not exist; `cdphub tables` lists the tables",
                self.links
            );
        }
        if let Some(previous) = &self.previous {
            let found = Self::read(
                state,
                previous,
                &PREVIOUS_COLUMNS,
                Some("unified_since"),
                |cols, since| {
                    let [id_type, id_value, unified_id] = cols else {
                        unreachable!("three previous columns")
                    };
                    let since = since.expect("requested");
                    for row in 0..id_type.len() {
                        if unified_id.is_null(row) || id_type.is_null(row) || id_value.is_null(row)
                        {
                            continue;
                        }
                        graph.remember(
                            id_type.value(row),
                            id_value.value(row),
                            PreviousId {
                                unified_id: unified_id.value(row).to_string(),
                                since: if since.is_null(row) {
                                    0
                                } else {
                                    since.value(row)
                                },
                            },
                        );
                    }
                },
            )
            .await?;
            if !found {
                tracing::info!("stitch: {previous} does not exist yet; every person gets a new id");
            }
        }
        let read_ms = started.elapsed().as_millis();
        let now = chrono::Utc::now().timestamp_micros();
        let (identifiers, stats) = graph.stitch(&self.rules, now);
        let stitch_ms = started.elapsed().as_millis() - read_ms;
        tracing::info!(
            identifiers = stats.identifiers,
            links = stats.links,
            persons = stats.persons,
            refused = stats.refused_links,
            passes = stats.passes,
            read_ms,
            stitch_ms,
            "stitched"
        );
        let batches = to_batches(&identifiers)?;
        tracing::debug!(
            total_ms = started.elapsed().as_millis(),
            "stitch output built"
        );
        Ok(MemorySourceConfig::try_new_exec(
            &[batches],
            stitch_schema(),
            projection.cloned(),
        )?)
    }
}

fn to_batches(identifiers: &Stitched) -> Result<Vec<RecordBatch>> {
    (0..identifiers.len())
        .step_by(OUTPUT_BATCH_ROWS)
        .map(|start| {
            let chunk = (start..identifiers.len().min(start + OUTPUT_BATCH_ROWS))
                .map(|i| identifiers.get(i));
            let mut id_type = StringBuilder::new();
            let mut id_value = StringBuilder::new();
            let mut unified_id = StringBuilder::new();
            let mut since = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            let mut previous = StringBuilder::new();
            let mut status = StringBuilder::new();
            let mut reason = StringBuilder::new();
            let mut size = UInt32Builder::new();
            for r in chunk {
                id_type.append_value(r.id_type);
                id_value.append_value(r.id_value);
                unified_id.append_option(r.unified_id);
                since.append_option(r.unified_since);
                previous.append_option(r.previous_unified_id);
                status.append_value(r.status.as_str());
                reason.append_option(r.reason);
                size.append_value(r.cluster_size);
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(id_type.finish()),
                Arc::new(id_value.finish()),
                Arc::new(unified_id.finish()),
                Arc::new(since.finish()),
                Arc::new(previous.finish()),
                Arc::new(status.finish()),
                Arc::new(reason.finish()),
                Arc::new(size.finish()),
            ];
            Ok(RecordBatch::try_new(stitch_schema(), columns)?)
        })
        .collect()
}
