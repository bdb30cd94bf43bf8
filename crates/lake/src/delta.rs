//! Curated and system tables are Delta tables: one atomic commit per publish, history kept.

use std::sync::{Arc, Once};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use url::Url;

use crate::error::{LakeError, Result};
use crate::location::Lake;

/// delta-rs only knows `file://` and `memory://` by itself; our own S3 store serves `s3://`.
/// Commits then use the default log store, whose `PutMode::Create` maps to S3's `If-None-Match`.
struct ConditionalPutLogStoreFactory;

impl LogStoreFactory for ConditionalPutLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_s3_log_store() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let scheme = Url::parse("s3://").expect("static URL");
        logstore_factories()
            .entry(scheme)
            .or_insert_with(|| Arc::new(ConditionalPutLogStoreFactory));
    });
}

/// A Delta table's place in the lake, e.g. `curated/staging/orders`, and its SQL name.
#[derive(Debug, Clone)]
pub struct DeltaLocation {
    pub relative: String,
    pub sql_name: String,
}

impl DeltaLocation {
    pub fn curated(schema: &str, table: &str) -> Self {
        Self {
            relative: format!("curated/{schema}/{table}"),
            sql_name: format!("{schema}.{table}"),
        }
    }

    pub fn system(table: &str) -> Self {
        Self {
            relative: format!("_hub/{table}"),
            sql_name: format!("hub.{table}"),
        }
    }
}

fn builder(lake: &Lake, location: &DeltaLocation) -> Result<DeltaTableBuilder> {
    register_s3_log_store();
    let url = lake.folder_url(&location.relative);
    Ok(DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| LakeError::delta(&location.sql_name, e))?
        .with_storage_backend(lake.store(), url))
}

/// An unloaded handle, for creating the table or writing its first version.
pub fn table_handle(lake: &Lake, location: &DeltaLocation) -> Result<DeltaTable> {
    builder(lake, location)?
        .build()
        .map_err(|e| LakeError::delta(&location.sql_name, e))
}

/// Loads the latest version (or `version`), or `None` when nothing was ever published there.
pub async fn open(
    lake: &Lake,
    location: &DeltaLocation,
    version: Option<u64>,
) -> Result<Option<DeltaTable>> {
    if !has_log(lake, location).await? {
        return Ok(None);
    }
    let mut builder = builder(lake, location)?;
    if let Some(version) = version {
        builder = builder.with_version(version);
    }
    match builder.load().await {
        Ok(table) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(LakeError::delta(&location.sql_name, e)),
    }
}

/// A Delta table exists once its first commit is in `_delta_log/`.
async fn has_log(lake: &Lake, location: &DeltaLocation) -> Result<bool> {
    let log = lake.path(&format!("{}/_delta_log", location.relative));
    let mut listing = lake.store().list(Some(&log));
    match listing.next().await {
        None | Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(LakeError::object_store(&log, e)),
    }
}

pub async fn provider(table: &DeltaTable, sql_name: &str) -> Result<Arc<dyn TableProvider>> {
    table
        .table_provider()
        .await
        .map_err(|e| LakeError::datafusion(format!("open Delta table {sql_name}"), e))
}

/// How the Parquet files of a published table are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// delta-rs defaults (pages of up to 20,000 rows): for tables read by scans.
    #[default]
    Scan,
    /// Pages of at most [`LOOKUP_PAGE_ROWS`] rows and no dictionaries (a reader must load a
    /// column's whole dictionary to decode one page). With the rows sorted by the lookup key
    /// (the caller sorts), the page index narrows a point lookup to one small page per column.
    Lookup,
}

/// Rows per data page under [`Layout::Lookup`].
pub const LOOKUP_PAGE_ROWS: usize = 1024;

impl Layout {
    fn writer_properties(self) -> Option<WriterProperties> {
        match self {
            Layout::Scan => None,
            Layout::Lookup => Some(
                WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_data_page_row_count_limit(LOOKUP_PAGE_ROWS)
                    .set_write_batch_size(LOOKUP_PAGE_ROWS)
                    .set_dictionary_enabled(false)
                    .build(),
            ),
        }
    }
}

/// Replaces the table's contents (and schema and partition columns) with the result of
/// `plan`, in one commit.
pub async fn overwrite(
    lake: &Lake,
    location: &DeltaLocation,
    plan: LogicalPlan,
    state: SessionState,
    layout: Layout,
    partition_by: &[String],
) -> Result<DeltaTable> {
    let table = match open(lake, location, None).await? {
        Some(table) => table,
        None => table_handle(lake, location)?,
    };
    let failed = |e| LakeError::datafusion(format!("publish {}", location.sql_name), e);
    let mut write = table.write(Vec::new());
    if !partition_by.is_empty() {
        write = write.with_partition_columns(partition_by.to_vec());
    }
    let mut state = state;
    let mut plan = plan;
    if let Some(properties) = layout.writer_properties() {
        write = write.with_writer_properties(properties);
        plan = in_plan_order(plan, &state).await.map_err(failed)?;
        // One partition keeps that order: delta-rs interleaves the batches of parallel
        // partitions into its file.
        state.config_mut().options_mut().execution.target_partitions = 1;
    }
    write
        .with_input_plan(plan)
        .with_session_state(Arc::new(state))
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_table_name(&location.sql_name)
        .await
        .map_err(|e| LakeError::delta(&location.sql_name, e))
}

/// `plan`, planned now and read back as a one-partition stream. delta-rs wraps its input in
/// nodes that do not declare that they keep row order, so DataFusion would drop a final sort
/// of `plan` as useless; a stream scan has no sort to drop.
async fn in_plan_order(
    plan: LogicalPlan,
    state: &SessionState,
) -> datafusion::error::Result<LogicalPlan> {
    let physical = state.create_physical_plan(&plan).await?;
    let rows = PlannedRows {
        schema: physical.schema(),
        plan: physical,
    };
    let source = StreamingTable::try_new(rows.schema.clone(), vec![Arc::new(rows)])?;
    LogicalPlanBuilder::scan("published", provider_as_source(Arc::new(source)), None)?.build()
}

#[derive(Debug)]
struct PlannedRows {
    schema: SchemaRef,
    plan: Arc<dyn ExecutionPlan>,
}

impl PartitionStream for PlannedRows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match execute_stream(self.plan.clone(), ctx) {
            Ok(stream) => stream,
            Err(e) => Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async move { Err(e) }),
            )),
        }
    }
}

/// Appends rows, creating the table on first use; new columns merge into the schema.
pub async fn append(
    lake: &Lake,
    location: &DeltaLocation,
    batches: Vec<RecordBatch>,
) -> Result<DeltaTable> {
    let table = match open(lake, location, None).await? {
        Some(table) => table,
        None => table_handle(lake, location)?,
    };
    table
        .write(batches)
        .with_save_mode(SaveMode::Append)
        .with_schema_mode(SchemaMode::Merge)
        .with_table_name(&location.sql_name)
        .await
        .map_err(|e| LakeError::delta(&location.sql_name, e))
}
