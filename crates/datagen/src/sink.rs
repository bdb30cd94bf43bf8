//! Streams record batches into Parquet files in object storage, one writer per partition,
//! rolling over to a new part file every `max_file_rows` rows.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::DatagenError;

/// Rows per Parquet row group.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per file at most (8 row groups).
pub(crate) const MAX_FILE_ROWS: usize = 8 * ROW_GROUP_ROWS;

/// How the files of a sink are named.
pub(crate) enum FileNaming {
    /// part-00000.parquet, part-00001.parquet, ... rolling over at `max_rows`.
    Parts { max_rows: usize },
    /// A single file of this name.
    Single(&'static str),
}

struct OpenFile {
    path: Path,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
}

/// Totals of what a sink wrote.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SinkStats {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

pub(crate) struct ParquetSink {
    store: Arc<dyn ObjectStore>,
    /// One directory per partition (a single one when unpartitioned).
    partition_dirs: Vec<Path>,
    schema: SchemaRef,
    naming: FileNaming,
    open: Vec<Option<OpenFile>>,
    next_part: Vec<u32>,
    stats: SinkStats,
}

impl ParquetSink {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        partition_dirs: Vec<Path>,
        schema: SchemaRef,
        naming: FileNaming,
    ) -> Self {
        let partitions = partition_dirs.len();
        Self {
            store,
            partition_dirs,
            schema,
            naming,
            open: (0..partitions).map(|_| None).collect(),
            next_part: vec![0; partitions],
            stats: SinkStats::default(),
        }
    }

    /// Appends a batch to a partition, starting new files as the current one fills up.
    pub(crate) async fn write(
        &mut self,
        partition: usize,
        batch: &RecordBatch,
    ) -> Result<(), DatagenError> {
        let max_rows = match self.naming {
            FileNaming::Parts { max_rows } => max_rows,
            FileNaming::Single(_) => usize::MAX,
        };
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.open[partition].is_none() {
                self.open[partition] = Some(self.open_file(partition)?);
            }
            let file = self.open[partition].as_mut().expect("opened above");
            let take = (max_rows - file.rows).min(batch.num_rows() - offset);
            let slice = batch.slice(offset, take);
            file.writer
                .write(&slice)
                .await
                .map_err(|e| DatagenError::parquet(&file.path, e))?;
            file.rows += take;
            offset += take;
            self.stats.rows += take as u64;
            if file.rows >= max_rows {
                self.close(partition).await?;
            }
        }
        Ok(())
    }

    fn open_file(&mut self, partition: usize) -> Result<OpenFile, DatagenError> {
        let name = match self.naming {
            FileNaming::Parts { .. } => format!("part-{:05}.parquet", self.next_part[partition]),
            FileNaming::Single(name) => name.to_owned(),
        };
        self.next_part[partition] += 1;
        let path = self.partition_dirs[partition].clone().join(name);
        let upload = BufWriter::new(self.store.clone(), path.clone());
        let writer = AsyncArrowWriter::try_new(
            upload,
            self.schema.clone(),
            Some(writer_properties(&self.schema)),
        )
        .map_err(|e| DatagenError::parquet(&path, e))?;
        Ok(OpenFile {
            path,
            writer,
            rows: 0,
        })
    }

    async fn close(&mut self, partition: usize) -> Result<(), DatagenError> {
        if let Some(mut file) = self.open[partition].take() {
            file.writer
                .finish()
                .await
                .map_err(|e| DatagenError::parquet(&file.path, e))?;
            self.stats.files += 1;
            self.stats.bytes += file.writer.bytes_written() as u64;
        }
        Ok(())
    }

    /// Closes every open file (in partition order) and returns the totals. A sink that
    /// received no rows still writes one empty file, so readers always find the schema.
    pub(crate) async fn finish(mut self) -> Result<SinkStats, DatagenError> {
        for partition in 0..self.open.len() {
            self.close(partition).await?;
        }
        if self.stats.files == 0 {
            self.open[0] = Some(self.open_file(0)?);
            self.close(0).await?;
        }
        Ok(self.stats)
    }
}

/// Columns whose values are (nearly) all distinct: a dictionary would only cost time.
const UNIQUE_COLUMNS: [&str; 6] = [
    "crm_record_id",
    "event_id",
    "order_id",
    "consent_id",
    "record_id",
    "session_id",
];

fn writer_properties(schema: &SchemaRef) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        if UNIQUE_COLUMNS.contains(&field.name().as_str()) {
            builder = builder.set_column_dictionary_enabled(column, false);
        } else if matches!(field.data_type(), DataType::Timestamp(..)) {
            // Mostly increasing instants: deltas are small and cheap to encode.
            builder = builder
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
        }
    }
    builder.build()
}

/// Deletes every object under `prefix` (a no-op when there is none).
pub(crate) async fn delete_prefix(
    store: &dyn ObjectStore,
    prefix: &Path,
) -> Result<(), DatagenError> {
    let listed: Vec<Path> = match store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
    {
        Ok(paths) => paths,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(DatagenError::store("list", prefix, e)),
    };
    let locations = futures::stream::iter(listed.into_iter().map(Ok)).boxed();
    let mut deleted = store.delete_stream(locations);
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(DatagenError::store("delete", prefix, e)),
        }
    }
    Ok(())
}
