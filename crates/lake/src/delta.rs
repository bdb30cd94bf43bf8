//! Curated and system tables are Delta tables: one atomic commit per publish, history kept.
//! A model's output is staged inside its table's folder and published by committing those
//! same files, so it is written once and readers never see it half done.

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
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{Action, MetadataExt};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, get_actions,
    logstore_factories,
};
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
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

/// A table's next version, written but not yet part of the table: Delta files under
/// `<table>/run-<run id>/` with a commit log of their own there. Readers of the table see
/// none of it until [`StagedVersion::publish`] adds those files in one commit, so data tests
/// can check the rows first and the rows are written once.
pub struct StagedVersion {
    target: DeltaLocation,
    /// The run's folder, relative to the table's root: the prefix of every staged file.
    folder: String,
    staged: DeltaTable,
    rows: u64,
    table: Arc<dyn TableProvider>,
}

/// Writes the result of `plan` as the staged next version of `target`.
pub async fn stage(
    lake: &Lake,
    target: &DeltaLocation,
    run_id: &str,
    plan: LogicalPlan,
    state: SessionState,
    layout: Layout,
    partition_by: &[String],
) -> Result<StagedVersion> {
    let folder = format!("run-{run_id}");
    let location = DeltaLocation {
        relative: format!("{}/{folder}", target.relative),
        sql_name: target.sql_name.clone(),
    };
    let written = async {
        let staged = overwrite(lake, &location, plan, state, layout, partition_by).await?;
        let snapshot = staged
            .snapshot()
            .map_err(|e| LakeError::delta(&target.sql_name, e))?;
        let rows = snapshot
            .log_data()
            .into_iter()
            .map(|file| file.num_records().unwrap_or_default() as u64)
            .sum();
        let table = provider(&staged, &target.sql_name).await?;
        Ok((staged, rows, table))
    };
    match written.await {
        Ok((staged, rows, table)) => Ok(StagedVersion {
            target: target.clone(),
            folder,
            staged,
            rows,
            table,
        }),
        Err(e) => {
            // Whatever files the failed write left behind are unreferenced scratch.
            remove_prefix(lake, &location.relative).await;
            Err(e)
        }
    }
}

impl StagedVersion {
    /// Rows written (from the files' statistics).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The staged rows as a table, for the data tests.
    pub fn table(&self) -> Arc<dyn TableProvider> {
        self.table.clone()
    }

    /// Commits the staged files to the table: with [`SaveMode::Overwrite`] they replace its
    /// files, with [`SaveMode::Append`] they join them. The new schema and partitioning come
    /// along; the table keeps its id and configuration where the layout allows.
    pub async fn publish(self, lake: &Lake, mode: SaveMode) -> Result<DeltaTable> {
        let committed = self.commit(lake, mode).await;
        // Only the staged log is scratch now. The files stay even when the commit failed:
        // a failure can be ambiguous (the commit written, the reply lost), and files no
        // commit names cost only disk until a vacuum.
        remove_prefix(
            lake,
            &format!("{}/{}/_delta_log", self.target.relative, self.folder),
        )
        .await;
        let (mut table, version) = committed?;
        table
            .update_incremental(Some(version))
            .await
            .map_err(|e| LakeError::delta(&self.target.sql_name, e))?;
        Ok(table)
    }

    /// Drops the staged files: the table stays as it was.
    pub async fn discard(self, lake: &Lake) {
        remove_prefix(lake, &format!("{}/{}", self.target.relative, self.folder)).await;
    }

    async fn commit(&self, lake: &Lake, mode: SaveMode) -> Result<(DeltaTable, u64)> {
        let name = &self.target.sql_name;
        let failed = |e| LakeError::delta(name, e);
        let staged_actions = match self.staged.log_store().read_commit_entry(0).await {
            Ok(Some(bytes)) => get_actions(0, &bytes).map_err(failed)?,
            Ok(None) => {
                return Err(failed(DeltaTableError::Generic(format!(
                    "the staged version under {}/{} has no commit",
                    self.target.relative, self.folder
                ))));
            }
            Err(e) => return Err(failed(e)),
        };
        let current = open(lake, &self.target, None).await?;
        let current_snapshot = current.as_ref().map(DeltaTable::snapshot).transpose();
        let current_snapshot = current_snapshot.map_err(failed)?;

        let mut actions = Vec::new();
        let mut partition_by = Vec::new();
        for action in staged_actions {
            match action {
                Action::Add(mut add) => {
                    // Add paths are relative to the table root (and URL-encoded, as written).
                    add.path = format!("{}/{}", self.folder, add.path);
                    actions.push(Action::Add(add));
                }
                Action::Metadata(staged) => {
                    partition_by = staged.partition_columns().to_vec();
                    let Some(current) = current_snapshot else {
                        actions.push(Action::Metadata(staged));
                        continue;
                    };
                    let current = current.metadata();
                    if current.partition_columns() != staged.partition_columns() {
                        // A new partitioning is a new layout: the staged metadata, same table.
                        let metadata = staged.with_table_id(current.id().to_string());
                        actions.push(Action::Metadata(metadata.map_err(|e| failed(e.into()))?));
                    } else if current.schema_string() != staged.schema_string() {
                        let schema = staged.parse_schema().map_err(|e| failed(e.into()))?;
                        let metadata = current.clone().with_schema(&schema);
                        actions.push(Action::Metadata(metadata.map_err(|e| failed(e.into()))?));
                    }
                }
                Action::Protocol(staged) => {
                    // Needed when the table is new or the new schema needs more features;
                    // never a downgrade of what the table already declares.
                    let raises = current_snapshot.is_none_or(|current| {
                        let current = current.protocol();
                        staged != *current
                            && staged.min_reader_version() >= current.min_reader_version()
                            && staged.min_writer_version() >= current.min_writer_version()
                    });
                    if raises {
                        actions.push(Action::Protocol(staged));
                    }
                }
                // The staged commit's own commitInfo and anything else stay behind.
                _ => {}
            }
        }
        if mode == SaveMode::Overwrite
            && let Some(current) = current_snapshot
        {
            actions.extend(
                current
                    .log_data()
                    .into_iter()
                    .map(|file| Action::Remove(file.remove_action(true))),
            );
        }
        let operation = DeltaOperation::Write {
            mode,
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: None,
        };
        let table = match current {
            Some(table) => table,
            None => table_handle(lake, &self.target)?,
        };
        // The write operation's defaults: checkpoints and log cleanup as configured.
        let committed = CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(
                table.snapshot().ok().map(|s| s as &dyn TableReference),
                table.log_store(),
                operation,
            )
            .await
            .map_err(failed)?;
        Ok((table, committed.version()))
    }
}

/// Deletes everything under `relative`; a failure only costs disk, so it is logged.
async fn remove_prefix(lake: &Lake, relative: &str) {
    let store = lake.store();
    let prefix = lake.path(relative);
    let locations = store.list(Some(&prefix)).map_ok(|m| m.location).boxed();
    let deleted: std::result::Result<Vec<_>, _> =
        store.delete_stream(locations).try_collect().await;
    if let Err(e) = deleted {
        tracing::warn!("could not clean {prefix}: {e}");
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
