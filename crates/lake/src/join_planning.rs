//! Two physical plan rules for hash joins: build on the side with fewer rows, and compact the
//! string views of build sides.
//!
//! A hash join concatenates its build side and answers with `take`, so every output batch
//! keeps a reference to every data buffer of the build side. When that output is in turn
//! the build side of the next join (a chain of `LEFT JOIN`s on one key, as in
//! `marts.customer_traits`), each batch brings all of those references again: the buffer
//! lists grow with every join, and so does the time spent cloning, filtering and counting
//! them. At scale 10 that chain took 47 s, most of it in buffer bookkeeping.
//!
//! [`CompactJoinBuildViews`] puts a [`CompactViewsExec`] under each build side. It copies a
//! view column's strings into fresh buffers when the buffers it references are more than
//! twice the bytes its rows use, and passes every other batch through untouched.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, Statistics};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{CardinalityEffect, replace_children_if_necessary};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterDescription, FilterPushdownPhase, FilterPushdownPropagation,
};
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

/// Wraps the build side of every hash join whose build rows carry string views.
#[derive(Debug, Default)]
pub struct CompactJoinBuildViews;

impl PhysicalOptimizerRule for CompactJoinBuildViews {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|plan| {
            let Some(join) = plan.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(plan));
            };
            let build = join.left();
            if build.is::<CompactViewsExec>() || !has_views(&build.schema()) {
                return Ok(Transformed::no(plan));
            }
            let children = vec![
                Arc::new(CompactViewsExec::new(Arc::clone(build))) as Arc<dyn ExecutionPlan>,
                Arc::clone(join.right()),
            ];
            Ok(Transformed::yes(replace_children_if_necessary(
                Arc::clone(&plan),
                children,
            )?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "CompactJoinBuildViews"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Hash joins, partitioned or collected, build on the other side when it has under half the
/// build side's rows (exact for a Delta scan), or no more rows and under half its bytes
/// (rows times a row width estimated from the join input's own columns).
///
/// DataFusion compares the inputs' byte sizes, which for a table scan are its whole files
/// and are unknown above a join. So 7.4M web sessions (many columns) weighed as much as
/// their 31M links (three columns) and the links were hashed; and in a chain of `LEFT JOIN`s
/// onto one person table (`marts.customer_traits`), the wide chain was hashed to probe each
/// narrow per-person aggregate, where hashing the aggregate and streaming the chain through
/// it is cheaper.
#[derive(Debug, Default)]
pub struct BuildOnSmallerSide;

impl PhysicalOptimizerRule for BuildOnSmallerSide {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        let collect_limit = config.optimizer.hash_join_single_partition_threshold_rows;
        plan.transform_up(|plan| {
            let Some(join) = plan.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(plan));
            };
            let mode = *join.partition_mode();
            if mode == PartitionMode::Auto || !join.join_type().supports_swap() || join.null_aware {
                return Ok(Transformed::no(plan));
            }
            let (Some(build), Some(probe)) = (rows(join.left()), rows(join.right())) else {
                return Ok(Transformed::no(plan));
            };
            let bytes = |rows: usize, side: &Arc<dyn ExecutionPlan>| {
                rows.saturating_mul(row_width(&side.schema()))
            };
            // Hashing costs by the row and copying the build side by the byte.
            let fewer_rows = build > 2 * probe;
            let fewer_bytes =
                build >= probe && bytes(build, join.left()) > 2 * bytes(probe, join.right());
            let keys = join.on().len();
            // An aggregate's row estimate is its input's, so a lookup is judged by width.
            let lookup =
                *join.join_type() == JoinType::Left && is_lookup(join.right(), join.left(), keys);
            let already_lookup =
                *join.join_type() == JoinType::Right && is_lookup(join.left(), join.right(), keys);
            if already_lookup || (!fewer_rows && !fewer_bytes && !lookup) {
                return Ok(Transformed::no(plan));
            }
            // A collected build side stays within the size DataFusion collects.
            let mode = match mode {
                PartitionMode::CollectLeft if probe > collect_limit => PartitionMode::Partitioned,
                mode => mode,
            };
            Ok(Transformed::yes(join.swap_inputs(mode)?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "BuildOnSmallerSide"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether a join of `preserved` onto `keyed` is a lookup worth hashing `keyed` for:
/// `keyed` has one row per key and `preserved` rows are over twice as wide.
fn is_lookup(
    keyed: &Arc<dyn ExecutionPlan>,
    preserved: &Arc<dyn ExecutionPlan>,
    keys: usize,
) -> bool {
    keyed_on_join_keys(keyed, keys)
        && row_width(&preserved.schema()) > 2 * row_width(&keyed.schema())
}

/// Whether `side` is a grouped aggregate (under projections and exchanges) with as many
/// group columns as the join has keys: one row per key, so the join is a lookup into it.
fn keyed_on_join_keys(side: &Arc<dyn ExecutionPlan>, keys: usize) -> bool {
    let mut node = side;
    loop {
        if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
            let groups = aggregate.group_expr();
            return groups.is_single() && groups.expr().len() == keys;
        }
        let passes_rows = node.is::<ProjectionExec>()
            || node.is::<CoalescePartitionsExec>()
            || node.is::<RepartitionExec>()
            || node.is::<CompactViewsExec>();
        match node.children().as_slice() {
            [child] if passes_rows => node = child,
            _ => return false,
        }
    }
}

/// The estimated row count of a join input, exact or not.
fn rows(side: &Arc<dyn ExecutionPlan>) -> Option<usize> {
    StatisticsContext::new()
        .compute(side.as_ref(), &StatisticsArgs::new())
        .ok()
        .and_then(|stats| stats.num_rows.get_value().copied())
}

/// A rough width in bytes of one row: fixed-width columns as they are, text and binary as
/// a 16-byte view plus a short value.
fn row_width(schema: &SchemaRef) -> usize {
    schema
        .fields()
        .iter()
        .map(|field| field.data_type().primitive_width().unwrap_or(24))
        .sum::<usize>()
        .max(1)
}

fn has_views(schema: &SchemaRef) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
}

/// Passes batches through, compacting view columns that reference far more buffer bytes
/// than their rows use.
#[derive(Debug, Clone)]
pub struct CompactViewsExec {
    input: Arc<dyn ExecutionPlan>,
}

impl CompactViewsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input }
    }
}

impl DisplayAs for CompactViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CompactViewsExec")
    }
}

impl ExecutionPlan for CompactViewsExec {
    fn name(&self) -> &str {
        "CompactViewsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
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
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.input.schema();
        let stream = self
            .input
            .execute(partition, context)?
            .map(|batch| batch.and_then(|b| Ok(compact(b)?)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }

    fn handle_child_pushdown_result(
        &self,
        _phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        Ok(FilterPushdownPropagation::if_all(child_pushdown_result))
    }
}

/// The batch with each oversized view column copied into compact buffers.
fn compact(batch: RecordBatch) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let compacted: Vec<Option<ArrayRef>> = batch.columns().iter().map(compacted).collect();
    if compacted.iter().all(Option::is_none) {
        return Ok(batch);
    }
    let columns = compacted
        .into_iter()
        .zip(batch.columns())
        .map(|(new, old)| new.unwrap_or_else(|| Arc::clone(old)))
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

/// The column in compact buffers, if it is a view column whose buffers hold more than twice
/// the bytes its rows point at.
fn compacted(column: &ArrayRef) -> Option<ArrayRef> {
    let oversized = |buffers: &[arrow::buffer::Buffer], used: usize| {
        buffer_bytes(buffers) > 2 * used.max(1 << 16)
    };
    match column.data_type() {
        DataType::Utf8View => {
            let views = column.as_string_view();
            oversized(views.data_buffers(), views.total_buffer_bytes_used())
                .then(|| Arc::new(views.gc()) as ArrayRef)
        }
        DataType::BinaryView => {
            let views = column.as_binary_view();
            oversized(views.data_buffers(), views.total_buffer_bytes_used())
                .then(|| Arc::new(views.gc()) as ArrayRef)
        }
        _ => None,
    }
}

fn buffer_bytes(buffers: &[arrow::buffer::Buffer]) -> usize {
    buffers.iter().map(|b| b.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringViewArray;
    use arrow::compute::concat;
    use arrow::datatypes::{Field, Schema};

    fn long_strings(rows: usize) -> ArrayRef {
        Arc::new(StringViewArray::from_iter_values(
            (0..rows).map(|i| format!("unified-id-{i:020}")),
        ))
    }

    #[test]
    fn slices_of_one_big_array_are_compacted_and_keep_their_values() {
        let all = long_strings(100_000);
        // Ten slices concatenated: ten references to the same buffers, as a join build has.
        let slices: Vec<ArrayRef> = (0..10).map(|i| all.slice(i * 1000, 1000)).collect();
        let refs: Vec<&dyn Array> = slices.iter().map(|a| a.as_ref()).collect();
        let joined = concat(&refs).unwrap();
        assert!(compacted(&joined).is_some());

        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Utf8View,
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::clone(&joined)]).unwrap();
        let out = compact(batch).unwrap();
        let column = out.column(0);
        assert!(compacted(column).is_none());
        assert_eq!(column.as_string_view(), joined.as_string_view());
        let before = buffer_bytes(joined.as_string_view().data_buffers());
        let after = buffer_bytes(column.as_string_view().data_buffers());
        assert!(after * 10 < before, "{before} -> {after} bytes");
    }

    #[test]
    fn compact_batches_pass_through() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Utf8View,
            false,
        )]));
        let column = long_strings(1000);
        let batch = RecordBatch::try_new(schema, vec![Arc::clone(&column)]).unwrap();
        let out = compact(batch).unwrap();
        assert!(Arc::ptr_eq(out.column(0), &column));
    }
}
