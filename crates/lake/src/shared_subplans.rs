//! A subquery that a query reads more than once (a CTE referenced from several places, the
//! same derived table twice) is computed once and its rows replayed to every reader, as
//! DuckDB and PostgreSQL do; DataFusion would plan one copy per reference.
//!
//! - [`ShareRepeatedSubplans`] (an analyzer rule, so before any reader's filters and
//!   projections are pushed in) wraps each repeated, costly subquery in a [`SharedSubplan`]
//!   node. The node keeps the optimizer from pushing a reader's filters or column choices
//!   into it, so every copy stays the same plan.
//! - [`SharedSubplanPlanner`] turns each copy into a [`SharedSubplanExec`]. The copies share
//!   one [`SharedRows`]: the first to run computes the rows (counted against the memory pool),
//!   the others wait for them.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, DataFusionError, Result, Statistics};
use datafusion::execution::TaskContext;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, SubqueryAlias, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, CardinalityEffect, EmissionType};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream, collect_partitioned,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use deltalake::delta_datafusion::planner::DeltaExtensionPlanner;
use futures::{StreamExt, TryStreamExt};

/// Wraps every subquery that appears more than once, and joins or aggregates, in a
/// [`SharedSubplan`]. Cheap repeats (a filtered scan) stay as they are: each reader's own
/// pushdowns make re-reading cheaper than keeping the rows.
#[derive(Debug, Default)]
pub struct ShareRepeatedSubplans;

impl AnalyzerRule for ShareRepeatedSubplans {
    fn name(&self) -> &str {
        "share_repeated_subplans"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let mut seen: HashMap<LogicalPlan, usize> = HashMap::new();
        let mut recursive = false;
        plan.apply_with_subqueries(|node| {
            recursive |= matches!(node, LogicalPlan::RecursiveQuery(_));
            if let Some(body) = shareable_body(node) {
                *seen.entry(body.clone()).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        // A recursive query re-runs its subqueries on each step's rows: nothing is shared.
        if recursive {
            return Ok(plan);
        }
        let shared: HashMap<LogicalPlan, Arc<SharedRows>> = seen
            .into_iter()
            .filter(|(body, count)| *count > 1 && is_costly(body))
            .map(|(body, _)| (body, Arc::default()))
            .collect();
        if shared.is_empty() {
            return Ok(plan);
        }
        plan.transform_down_with_subqueries(|node| {
            let Some(rows) = shareable_body(&node).and_then(|body| shared.get(body)) else {
                return Ok(Transformed::no(node));
            };
            let rows = Arc::clone(rows);
            let LogicalPlan::SubqueryAlias(alias) = node else {
                unreachable!("shareable_body only matches aliases");
            };
            let body = Arc::unwrap_or_clone(alias.input);
            let node = LogicalPlan::Extension(Extension {
                node: Arc::new(SharedSubplan { input: body, rows }),
            });
            let aliased = SubqueryAlias::try_new(Arc::new(node), alias.alias)?;
            // The body is planned once, inside the node: nothing below it to share.
            Ok(Transformed::new(
                LogicalPlan::SubqueryAlias(aliased),
                true,
                TreeNodeRecursion::Jump,
            ))
        })
        .map(|t| t.data)
    }
}

/// The query under a named subquery (`WITH x AS (...)`, `(...) AS x`), when it is not itself
/// just another name for one (the innermost name is the one compared).
fn shareable_body(node: &LogicalPlan) -> Option<&LogicalPlan> {
    match node {
        LogicalPlan::SubqueryAlias(alias) => match alias.input.as_ref() {
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::Extension(_) => None,
            body => Some(body),
        },
        _ => None,
    }
}

/// Joins or aggregates, and reads nothing of an outer query (a correlated subquery is
/// rewritten into a join by the optimizer, which a shared node would stop).
fn is_costly(body: &LogicalPlan) -> bool {
    let correlated = body
        .exists(|node| Ok(node.contains_outer_reference()))
        .unwrap_or(true);
    !correlated
        && body
            .exists(|node| {
                Ok(matches!(
                    node,
                    LogicalPlan::Join(_)
                        | LogicalPlan::Aggregate(_)
                        | LogicalPlan::Window(_)
                        | LogicalPlan::Distinct(_)
                ))
            })
            .unwrap_or(false)
}

/// The rows of one shared subquery, computed by whichever copy runs first.
#[derive(Debug, Default)]
pub struct SharedRows {
    computed: tokio::sync::OnceCell<std::result::Result<Computed, Arc<DataFusionError>>>,
}

#[derive(Debug)]
struct Computed {
    partitions: Vec<Vec<RecordBatch>>,
    _memory: MemoryReservation,
}

impl SharedRows {
    async fn get(
        &self,
        input: &Arc<dyn ExecutionPlan>,
        context: &Arc<TaskContext>,
    ) -> Result<&Computed> {
        let computed = self
            .computed
            .get_or_init(|| async {
                let partitions = collect_partitioned(Arc::clone(input), Arc::clone(context))
                    .await
                    .map_err(Arc::new)?;
                let memory = MemoryConsumer::new("SharedSubplan").register(context.memory_pool());
                let bytes = partitions
                    .iter()
                    .flatten()
                    .map(RecordBatch::get_array_memory_size)
                    .sum();
                memory.try_grow(bytes).map_err(Arc::new)?;
                Ok(Computed {
                    partitions,
                    _memory: memory,
                })
            })
            .await;
        computed
            .as_ref()
            .map_err(|e| DataFusionError::Shared(Arc::clone(e)))
    }
}

/// A subquery computed once for all its readers (see the module notes).
#[derive(Debug, Clone)]
pub struct SharedSubplan {
    input: LogicalPlan,
    rows: Arc<SharedRows>,
}

impl PartialEq for SharedSubplan {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.rows, &other.rows) && self.input == other.input
    }
}

impl Eq for SharedSubplan {}

impl Hash for SharedSubplan {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
    }
}

impl PartialOrd for SharedSubplan {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.input.partial_cmp(&other.input)
    }
}

impl UserDefinedLogicalNodeCore for SharedSubplan {
    fn name(&self) -> &str {
        "SharedSubplan"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedSubplan")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.into_iter().next().ok_or_else(|| {
            DataFusionError::Internal("SharedSubplan takes one input".to_string())
        })?;
        Ok(Self {
            input,
            rows: Arc::clone(&self.rows),
        })
    }
}

/// The lake's query planner: Delta's nodes (its writes plan them) and [`SharedSubplan`].
#[derive(Debug, Default)]
pub struct LakeQueryPlanner;

#[async_trait]
impl QueryPlanner for LakeQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner = DefaultPhysicalPlanner::with_extension_planners(vec![
            DeltaExtensionPlanner::new(),
            Arc::new(SharedSubplanPlanner),
        ]);
        planner.create_physical_plan(logical_plan, session).await
    }
}

/// Plans [`SharedSubplan`] nodes; the other nodes are left to the next planner.
#[derive(Debug, Default)]
pub struct SharedSubplanPlanner;

#[async_trait]
impl ExtensionPlanner for SharedSubplanPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(shared) = node.as_any().downcast_ref::<SharedSubplan>() else {
            return Ok(None);
        };
        Ok(Some(Arc::new(SharedSubplanExec::new(
            Arc::clone(&physical_inputs[0]),
            Arc::clone(&shared.rows),
        ))))
    }
}

/// One reader of a shared subquery: replays the shared rows, computing them if it is first.
#[derive(Debug)]
pub struct SharedSubplanExec {
    input: Arc<dyn ExecutionPlan>,
    rows: Arc<SharedRows>,
    properties: Arc<PlanProperties>,
}

impl SharedSubplanExec {
    fn new(input: Arc<dyn ExecutionPlan>, rows: Arc<SharedRows>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            rows,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for SharedSubplanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedSubplanExec")
    }
}

impl ExecutionPlan for SharedSubplanExec {
    fn name(&self) -> &str {
        "SharedSubplanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            Arc::clone(&self.rows),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (input, rows) = (Arc::clone(&self.input), Arc::clone(&self.rows));
        let readers = self.properties.output_partitioning().partition_count();
        let batches = futures::stream::once(async move {
            let computed = rows.get(&input, &context).await?;
            // The copies are the same plan, so the same partition count; should the
            // physical optimizer have planned them apart, partitions are dealt round-robin.
            let mine: Vec<RecordBatch> = computed
                .partitions
                .iter()
                .enumerate()
                .filter(|(computed, _)| computed % readers == partition)
                .flat_map(|(_, batches)| batches.iter().cloned())
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(mine.into_iter().map(Ok)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            batches.boxed(),
        )))
    }

    fn child_stats_requests(&self, _partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(None)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        // Per partition the round-robin deal makes the child's figures unknown.
        if args.partition().is_some() {
            return Ok(Arc::new(Statistics::new_unknown(&self.schema())));
        }
        Ok(Arc::clone(&input_stats[0]))
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A session like the lake's, with a small `events` table.
    async fn session() -> SessionContext {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_query_planner(Arc::new(LakeQueryPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.add_analyzer_rule(Arc::new(ShareRepeatedSubplans));
        ctx.sql(EVENTS).await.unwrap().collect().await.unwrap();
        ctx
    }

    async fn plan_and_rows(ctx: &SessionContext, sql: &str) -> (String, String) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let plan_text = displayable(plan.as_ref()).indent(false).to_string();
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (plan_text, rows)
    }

    const EVENTS: &str = "CREATE TABLE events AS SELECT * FROM (VALUES \
        ('a', 'web', 10), ('a', 'store', 5), ('b', 'web', 7), ('c', 'app', 1), ('c', 'app', 2)) \
        AS t(person, channel, amount)";

    #[tokio::test]
    async fn a_repeated_aggregate_is_computed_once_and_each_reader_filters_its_copy() {
        let ctx = session().await;
        let (plan, rows) = plan_and_rows(
            &ctx,
            "WITH totals AS (SELECT person, sum(amount) AS amount, count(*) AS n FROM events GROUP BY person) \
             SELECT big.person, big.amount, small.person AS other \
             FROM totals AS big JOIN totals AS small ON big.n = small.n AND big.person <> small.person \
             WHERE big.amount > 10 ORDER BY big.person, other",
        )
        .await;
        assert_eq!(plan.matches("SharedSubplanExec").count(), 2, "{plan}");
        // Both readers run over one computation: `a` (15, 2 events) pairs with `c` (3, 2).
        assert_eq!(
            rows.trim(),
            "+--------+--------+-------+\n\
             | person | amount | other |\n\
             +--------+--------+-------+\n\
             | a      | 15     | c     |\n\
             +--------+--------+-------+"
        );
    }

    #[tokio::test]
    async fn a_cheap_or_single_subquery_is_left_to_the_optimizer() {
        let ctx = session().await;
        let (plan, rows) = plan_and_rows(
            &ctx,
            "WITH web AS (SELECT * FROM events WHERE channel = 'web'), \
                  totals AS (SELECT person, sum(amount) AS amount FROM events GROUP BY person) \
             SELECT (SELECT count(*) FROM web AS w1) + (SELECT count(*) FROM web AS w2) AS twice, \
                    (SELECT max(amount) FROM totals) AS top",
        )
        .await;
        assert!(!plan.contains("SharedSubplanExec"), "{plan}");
        assert!(rows.contains("| 4     | 15  |"), "{rows}");
    }

    #[tokio::test]
    async fn a_failure_inside_the_shared_rows_reaches_every_reader() {
        let ctx = session().await;
        let err = ctx
            .sql(
                "WITH ratios AS (SELECT person, CAST(sum(amount) AS INT) / (count(*) - 2) AS r FROM events GROUP BY person) \
                 SELECT * FROM ratios AS x JOIN ratios AS y USING (person)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Divide by zero"), "{err}");
    }
}
