//! Bulk ingest (`CommandStatementIngest`): a client streams Arrow batches into `raw.<table>`,
//! written as Parquet under `raw/<table>/` batch by batch (never buffered whole) and queryable as
//! soon as the call returns.

use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use cdphub_lake::config::{SourceConfig, is_identifier};
use cdphub_lake::raw::{PARQUET_EXTENSION, RawSource};
use cdphub_lake::{CATALOG, RAW_SCHEMA};
use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::audit::AuditRecord;
use crate::auth::Session;
use crate::engine::{Engine, flight_schema};
use crate::error::{Result, ServeError};

/// Rows per Parquet row group of an ingested file. A reader fetches a whole row group before
/// its first batch, so this bounds the time to first row of a `SELECT *` (DuckDB uses 122,880).
const INGEST_ROW_GROUP_ROWS: usize = 128 * 1024;

/// Largest dictionary of a column chunk before the writer falls back to plain encoding. Small
/// enough that a column of mostly distinct values (ids, amounts, times) is stored plain, which
/// is cheaper to read than a dictionary of a whole row group's values; categories keep theirs.
const INGEST_DICTIONARY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Append,
    Replace,
    CreateAppend,
}

impl Mode {
    fn from_command(command: &CommandStatementIngest) -> Result<Self> {
        let options = command.table_definition_options.unwrap_or_default();
        let not_exist = TableNotExistOption::try_from(options.if_not_exist)
            .unwrap_or(TableNotExistOption::Unspecified);
        let exists = TableExistsOption::try_from(options.if_exists)
            .unwrap_or(TableExistsOption::Unspecified);
        // Unspecified follows the Flight SQL defaults: create if missing, fail if present.
        Ok(match (not_exist, exists) {
            (TableNotExistOption::Fail, TableExistsOption::Append) => Self::Append,
            (TableNotExistOption::Fail, TableExistsOption::Replace) => Self::Replace,
            (_, TableExistsOption::Append) => Self::CreateAppend,
            (_, TableExistsOption::Replace) => Self::Replace,
            (TableNotExistOption::Fail, _) => {
                return Err(ServeError::InvalidArgument(
                    "ingest with `fail if missing` and `fail if present` can never succeed".into(),
                ));
            }
            _ => Self::Create,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Append => "append",
            Self::Replace => "replace",
            Self::CreateAppend => "create_append",
        }
    }
}

pub async fn ingest(
    engine: &Arc<Engine>,
    session: &Arc<Session>,
    command: CommandStatementIngest,
    stream: PeekableFlightDataStream,
    client: Option<String>,
) -> Result<i64> {
    let started = Utc::now();
    let sql = format!(
        "INGEST INTO {}.{}",
        command.schema.as_deref().unwrap_or(RAW_SCHEMA),
        command.table
    );
    let outcome = run(engine, session, &command, stream).await;
    let (rows, bytes) = outcome.as_ref().map(|(r, b)| (*r, *b)).unwrap_or((0, 0));
    let mode = Mode::from_command(&command).map(Mode::label).unwrap_or("?");
    engine.audit.record(AuditRecord {
        query_id: uuid::Uuid::new_v4().to_string(),
        session_id: Some(session.id.clone()),
        user: session.user.clone(),
        role: Some(session.role.name.clone()),
        kind: "ingest",
        sql: format!("{sql} ({mode})"),
        started_at: started,
        finished_at: Utc::now(),
        rows,
        bytes,
        status: match &outcome {
            Ok(_) => "ok".into(),
            Err(e) => e.status_label().into(),
        },
        error: outcome.as_ref().err().map(ToString::to_string),
        client,
    });
    outcome.map(|(rows, _)| rows)
}

async fn run(
    engine: &Arc<Engine>,
    session: &Session,
    command: &CommandStatementIngest,
    stream: PeekableFlightDataStream,
) -> Result<(i64, i64)> {
    if !session.role.ingest {
        return Err(ServeError::Forbidden {
            role: session.role.name.clone(),
            action: "bulk-ingest into raw.* (grant `ingest = true` in its [roles.<name>] section)"
                .into(),
        });
    }
    if command.transaction_id.is_some() {
        return Err(ServeError::Unsupported(
            "ingest inside a transaction".into(),
        ));
    }
    if command.temporary {
        return Err(ServeError::Unsupported("temporary ingest tables".into()));
    }
    if let Some(catalog) = command.catalog.as_deref().filter(|c| !c.is_empty())
        && catalog != CATALOG
    {
        return Err(ServeError::InvalidArgument(format!(
            "unknown catalog `{catalog}`; the catalog is `{CATALOG}`"
        )));
    }
    if let Some(schema) = command.schema.as_deref().filter(|s| !s.is_empty())
        && schema != RAW_SCHEMA
    {
        return Err(ServeError::InvalidArgument(format!(
            "bulk ingest writes raw.<table> only, not {schema}.{}: staging and the marts are built by `cdphub run`",
            command.table
        )));
    }
    let table = command.table.as_str();
    if !is_identifier(table) {
        return Err(ServeError::InvalidArgument(format!(
            "`{table}` is not a valid table name: use snake_case (letters, digits, `_`)"
        )));
    }
    let mode = Mode::from_command(command)?;
    let project = engine.catalogs.project();
    let config = project
        .config
        .sources
        .get(table)
        .cloned()
        .unwrap_or_else(SourceConfig::unpartitioned);
    if !config.partition_columns.is_empty() {
        return Err(ServeError::InvalidArgument(format!(
            "raw.{table} is partitioned by {}; bulk ingest writes unpartitioned sources only (land partitioned files under raw/{}/<column>=<value>/ instead)",
            config.partition_columns.join(", "),
            config.folder(table)
        )));
    }
    let lake = engine.catalogs.lake().clone();
    let folder = config.folder(table).to_string();
    let existing = RawSource::inspect(&lake, table, &config).await?;
    match (mode, &existing) {
        (Mode::Create, Some(_)) => {
            return Err(ServeError::AlreadyExists(format!(
                "raw.{table} already exists; ingest in append or replace mode"
            )));
        }
        (Mode::Append, None) => {
            return Err(ServeError::NotFound(format!(
                "raw.{table} does not exist; ingest in create mode first"
            )));
        }
        _ => {}
    }

    let store = lake.store();
    let old_files: Vec<object_store::path::Path> = if mode == Mode::Replace {
        store
            .list(Some(&lake.path(&format!("raw/{folder}"))))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| ServeError::from(cdphub_lake::LakeError::object_store(&folder, e)))?
    } else {
        Vec::new()
    };

    let mut batches =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
    let file = lake.path(&format!(
        "raw/{folder}/part-{}-{}{PARQUET_EXTENSION}",
        Utc::now().format("%Y%m%dT%H%M%S"),
        uuid::Uuid::new_v4().simple()
    ));
    let mut writer: Option<(AsyncArrowWriter<BufWriter>, SchemaRef)> = None;
    let mut rows = 0i64;
    let mut bytes = 0i64;
    let result: Result<()> = async {
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| {
                ServeError::InvalidArgument(format!("reading the ingest stream: {e}"))
            })?;
            if writer.is_none() {
                writer = Some(open_writer(
                    store.clone(),
                    &file,
                    &batch.schema(),
                    existing.as_ref(),
                    mode,
                    table,
                )?);
            }
            let (w, schema) = writer.as_mut().expect("writer opened");
            let batch = crate::engine::to_flight_batch(batch, schema)
                .map_err(|e| ServeError::InvalidArgument(format!("ingest batch: {e}")))?;
            rows += batch.num_rows() as i64;
            bytes += batch.get_array_memory_size() as i64;
            w.write(&batch)
                .await
                .map_err(|e| ServeError::Internal(format!("writing {file}: {e}")))?;
        }
        if writer.is_none() {
            // No rows: still create the table with the announced schema.
            if let Some(schema) = batches.schema().cloned() {
                writer = Some(open_writer(
                    store.clone(),
                    &file,
                    &schema,
                    existing.as_ref(),
                    mode,
                    table,
                )?);
            } else {
                return Err(ServeError::InvalidArgument(
                    "the ingest stream carried no schema and no rows".into(),
                ));
            }
        }
        let (w, _) = writer.take().expect("writer opened");
        w.close()
            .await
            .map_err(|e| ServeError::Internal(format!("writing {file}: {e}")))?;
        Ok(())
    }
    .await;
    if let Err(error) = result {
        // Leave no half-written file behind (a failed multipart upload leaves nothing; a
        // completed one is removed).
        drop(writer);
        let _ = store.delete(&file).await;
        return Err(error);
    }
    for old in old_files {
        if old != file {
            store
                .delete(&old)
                .await
                .map_err(|e| ServeError::from(cdphub_lake::LakeError::object_store(&old, e)))?;
        }
    }
    // Queryable at once: re-read the source's footers and swap the table in.
    let source = RawSource::inspect(&lake, table, &config)
        .await?
        .ok_or_else(|| ServeError::Internal(format!("raw.{table} has no files after ingest")))?;
    let provider = source.table_provider(&lake)?;
    let catalog = engine.catalogs.current();
    catalog.set_table(RAW_SCHEMA, table, provider);
    // Listings are cached per path for every session; an append would stay invisible.
    if let Some(listings) = catalog
        .ctx
        .state()
        .runtime_env()
        .cache_manager
        .get_list_files_cache()
    {
        listings.clear();
    }
    Ok((rows, bytes))
}

fn open_writer(
    store: Arc<dyn ObjectStore>,
    file: &object_store::path::Path,
    schema: &SchemaRef,
    existing: Option<&RawSource>,
    mode: Mode,
    table: &str,
) -> Result<(AsyncArrowWriter<BufWriter>, SchemaRef)> {
    let schema = flight_schema(schema);
    if let (Some(existing), Mode::Append | Mode::CreateAppend) = (existing, mode) {
        for field in schema.fields() {
            if let Ok(old) = existing.file_schema.field_with_name(field.name())
                && old.data_type() != field.data_type()
            {
                return Err(ServeError::InvalidArgument(format!(
                    "raw.{table}.{}: the data has type {} but the table has {}; cast it, or ingest in replace mode",
                    field.name(),
                    field.data_type(),
                    old.data_type()
                )));
            }
        }
    }
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(INGEST_ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(INGEST_DICTIONARY_BYTES)
        .build();
    let writer = AsyncArrowWriter::try_new(
        BufWriter::new(store, file.clone()),
        schema.clone(),
        Some(props),
    )
    .map_err(|e| ServeError::Internal(format!("opening {file}: {e}")))?;
    Ok((writer, schema))
}
