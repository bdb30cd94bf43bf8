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
    Array, ArrayRef, RecordBatch, RecordBatchOptions, StringBuilder, StringViewArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{
    Result, ScalarValue, TableReference, internal_err, plan_datafusion_err, plan_err,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableType, cast, col};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;

use crate::config::{IdentityConfig, StitchRules};
use crate::error::FunctionError;
use crate::identity::interner::{IdType, Key};
use crate::identity::parallel::parallel_map;
use crate::identity::stitch::{IdentityGraph, Stitched};

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

/// Rows read before a chunk is interned: large enough that the shard threads have work,
/// small enough that the chunk's batches stay a small share of memory.
const CHUNK_ROWS: usize = 1 << 19;

impl StitchTable {
    /// Streams the named columns of `table` (text as string views, `extra` as a UTC
    /// timestamp) into `each`, a chunk of batches at a time.
    async fn read(
        state: &SessionState,
        table: &TableReference,
        columns: &[&str],
        extra: Option<&str>,
        mut each: impl FnMut(&[RecordBatch]),
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
        // Views: casting the lake's Utf8View columns to Utf8 would copy every string.
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
        let mut chunk = Vec::new();
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows();
            chunk.push(batch);
            if rows >= CHUNK_ROWS {
                each(&chunk);
                chunk.clear();
                rows = 0;
            }
        }
        if !chunk.is_empty() {
            each(&chunk);
        }
        Ok(true)
    }
}

/// A text column projected by [`StitchTable::read`].
fn text_column(batch: &RecordBatch, index: usize) -> &StringViewArray {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<StringViewArray>()
        .expect("projected as Utf8View")
}

/// Identifier type names resolved once per distinct short name: a name of up to 12 bytes
/// is entirely inside its 16-byte string view, so the view is the key.
#[derive(Default)]
struct TypeCache {
    inline: Vec<(u128, Option<IdType>)>,
}

impl TypeCache {
    const INLINE_LEN: u128 = 12;

    fn resolve(
        &mut self,
        column: &StringViewArray,
        row: usize,
        lookup: &mut impl FnMut(&str) -> Option<IdType>,
    ) -> Option<IdType> {
        let view = column.views()[row];
        if view & 0xffff_ffff > Self::INLINE_LEN {
            return lookup(column.value(row));
        }
        if let Some(&(_, id_type)) = self.inline.iter().find(|(v, _)| *v == view) {
            return id_type;
        }
        let id_type = lookup(column.value(row));
        self.inline.push((view, id_type));
        id_type
    }
}

/// The link columns of one batch, with the identifier types resolved (`None` where the
/// type or the value is null).
struct LinkColumns<'a> {
    a_types: Vec<Option<IdType>>,
    a_values: &'a StringViewArray,
    b_types: Vec<Option<IdType>>,
    b_values: &'a StringViewArray,
}

fn resolve_types(
    types: &mut TypeCache,
    lookup: &mut impl FnMut(&str) -> Option<IdType>,
    type_names: &StringViewArray,
    values: &StringViewArray,
) -> Vec<Option<IdType>> {
    (0..type_names.len())
        .map(|row| {
            if type_names.is_null(row) || values.is_null(row) {
                None
            } else {
                types.resolve(type_names, row, lookup)
            }
        })
        .collect()
}

/// Adds one chunk of link rows to the graph.
fn add_links<'a>(graph: &mut IdentityGraph, types: &mut TypeCache, chunk: &'a [RecordBatch]) {
    let mut register = |name: &str| Some(graph.register_type(name));
    let columns: Vec<LinkColumns<'a>> = chunk
        .iter()
        .map(|batch| {
            let column = |i| text_column(batch, i);
            let (a_values, b_values) = (column(1), column(3));
            LinkColumns {
                a_types: resolve_types(types, &mut register, column(0), a_values),
                a_values,
                b_types: resolve_types(types, &mut register, column(2), b_values),
                b_values,
            }
        })
        .collect();
    let rows: Vec<usize> = chunk.iter().map(RecordBatch::num_rows).collect();
    graph.add_records(&rows, |segment, row, side| {
        let columns = &columns[segment];
        let a = Key {
            id_type: columns.a_types[row]?,
            value: columns.a_values.value(row),
        };
        if side == 0 {
            return Some(a);
        }
        let b = Key {
            id_type: columns.b_types[row]?,
            value: columns.b_values.value(row),
        };
        // A link to itself just declares the identifier.
        (b.id_type != a.id_type || b.value != a.value).then_some(b)
    });
}

/// Adds one chunk of a previous stitch's rows (the ids people had) to the graph.
fn add_previous(graph: &mut IdentityGraph, types: &mut TypeCache, chunk: &[RecordBatch]) {
    let mut identifiers = Vec::new();
    let mut previous = Vec::new();
    let mut known = |name: &str| graph.known_type(name);
    for record_batch in chunk {
        let column = |i| text_column(record_batch, i);
        let (id_type, id_value, unified_id) = (column(0), column(1), column(2));
        let since = record_batch
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("projected as timestamp");
        for row in 0..record_batch.num_rows() {
            if unified_id.is_null(row) || id_type.is_null(row) || id_value.is_null(row) {
                continue;
            }
            // Types this run has not seen have no identifiers to remember.
            let Some(id_type) = types.resolve(id_type, row, &mut known) else {
                continue;
            };
            identifiers.push(Key {
                id_type,
                value: id_value.value(row),
            });
            let since = if since.is_null(row) {
                0
            } else {
                since.value(row)
            };
            previous.push((unified_id.value(row), since));
        }
    }
    graph.remember_all(&identifiers, &previous);
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
        let mut types = TypeCache::default();
        // Time spent adding links, apart from waiting for the scan's batches.
        let mut interning = std::time::Duration::ZERO;
        let found = Self::read(state, &self.links, &LINK_COLUMNS, None, |chunk| {
            let start = std::time::Instant::now();
            add_links(&mut graph, &mut types, chunk);
            interning += start.elapsed();
        })
        .await?;
        if !found {
            return plan_err!(
                "stitch: links table {} does not exist; `cdphub tables` lists the tables",
                self.links
            );
        }
        if let Some(previous) = &self.previous {
            // A fresh cache: previous rows resolve names without registering new types.
            let mut types = TypeCache::default();
            let found = Self::read(
                state,
                previous,
                &PREVIOUS_COLUMNS,
                Some("unified_since"),
                |chunk| add_previous(&mut graph, &mut types, chunk),
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
            interning_ms = interning.as_millis(),
            stitch_ms,
            "stitched"
        );
        // Only the columns the query reads are built (count(*) builds none).
        let full = stitch_schema();
        let columns = projection
            .cloned()
            .unwrap_or_else(|| (0..full.fields().len()).collect());
        let schema = Arc::new(full.project(&columns)?);
        let batches = to_batches(&identifiers, &schema)?;
        tracing::debug!(
            total_ms = started.elapsed().as_millis(),
            "stitch output built"
        );
        Ok(MemorySourceConfig::try_new_exec(&[batches], schema, None)?)
    }
}

/// The result as batches of `schema` (columns of [`stitch_schema`]), built a column at a
/// time (each column's loop reads one thing at random, so the reads overlap) and batches
/// side by side on the cores.
fn to_batches(identifiers: &Stitched, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let starts: Vec<usize> = (0..identifiers.len()).step_by(OUTPUT_BATCH_ROWS).collect();
    parallel_map(&starts, |&start| {
        let rows = start..identifiers.len().min(start + OUTPUT_BATCH_ROWS);
        let column = |name: &str| -> Result<ArrayRef> {
            let rows = rows.clone();
            Ok(match name {
                "id_type" => output_text(rows, 12, &|i| Some(identifiers.id_type(i))),
                "id_value" => output_text(rows, 24, &|i| Some(identifiers.id_value(i))),
                "unified_id" => output_text(rows, 12, &|i| identifiers.unified_id(i)),
                "unified_since" => {
                    let since: TimestampMicrosecondArray =
                        rows.map(|i| identifiers.unified_since(i)).collect();
                    Arc::new(since.with_timezone("UTC"))
                }
                "previous_unified_id" => {
                    output_text(rows, 0, &|i| identifiers.previous_unified_id(i))
                }
                "status" => output_text(rows, 8, &|i| Some(identifiers.status(i).as_str())),
                "reason" => output_text(rows, 0, &|i| identifiers.reason(i)),
                "cluster_size" => {
                    let sizes: UInt32Array =
                        rows.map(|i| Some(identifiers.cluster_size(i))).collect();
                    Arc::new(sizes)
                }
                other => return internal_err!("stitch has no output column {other}"),
            })
        };
        let arrays = schema
            .fields()
            .iter()
            .map(|f| column(f.name()))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &options,
        )?)
    })
    .into_iter()
    .collect()
}

/// A text column of the output: `value` of each row.
fn output_text<'a>(
    rows: std::ops::Range<usize>,
    bytes_per_row: usize,
    value: &dyn Fn(usize) -> Option<&'a str>,
) -> ArrayRef {
    let mut column = StringBuilder::with_capacity(rows.len(), rows.len() * bytes_per_row);
    for i in rows {
        column.append_option(value(i));
    }
    Arc::new(column.finish())
}
