//! Raw sources: plain Parquet under `raw/<source>/`, checked file by file before they are queried.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::config::SourceConfig;
use crate::error::{LakeError, Result};
use crate::location::Lake;

pub const PARQUET_EXTENSION: &str = ".parquet";

/// What a look at every file of a raw source found.
#[derive(Debug, Clone)]
pub struct RawSource {
    pub name: String,
    pub folder: String,
    /// Columns read from the files (partition columns excluded), merged across files.
    pub file_schema: SchemaRef,
    pub partition_columns: Vec<String>,
    pub files: usize,
    pub bytes: u64,
}

impl RawSource {
    /// Lists the source's Parquet files and reads every footer, so that a corrupt file or a
    /// drifted schema is reported with its path before any query runs. `Ok(None)`: no files yet.
    pub async fn inspect(lake: &Lake, name: &str, config: &SourceConfig) -> Result<Option<Self>> {
        let folder = config.folder(name).to_string();
        let prefix = lake.path(&format!("raw/{folder}"));
        let store = lake.store();
        let mut files: Vec<ObjectMeta> = store
            .list(Some(&prefix))
            .try_filter(|meta| futures::future::ready(is_data_file(meta)))
            .try_collect()
            .await
            .map_err(|e| LakeError::object_store(&prefix, e))?;
        if files.is_empty() {
            return Ok(None);
        }
        files.sort_by(|a, b| a.location.cmp(&b.location));

        for meta in &files {
            check_partition_folders(name, &prefix, meta, &config.partition_columns)?;
        }

        let schemas: Vec<(String, SchemaRef)> = futures::stream::iter(files.iter().cloned())
            .map(|meta| {
                let store = store.clone();
                async move {
                    let file = meta.location.to_string();
                    read_file_schema(store, meta)
                        .await
                        .map(|schema| (file.clone(), schema))
                        .map_err(|e| LakeError::CorruptRawFile {
                            source_name: name.to_string(),
                            file,
                            message: e.to_string(),
                        })
                }
            })
            .buffered(16)
            .try_collect()
            .await?;

        let file_schema = merge_schemas(name, &schemas, &config.partition_columns)?;
        Ok(Some(Self {
            name: name.to_string(),
            folder,
            file_schema,
            partition_columns: config.partition_columns.clone(),
            files: files.len(),
            bytes: files.iter().map(|f| f.size).sum(),
        }))
    }

    /// A DataFusion listing table over the source, with hive partition columns as text.
    pub fn table_provider(&self, lake: &Lake) -> Result<Arc<dyn TableProvider>> {
        let url = lake.folder_url(&format!("raw/{}", self.folder));
        let table_url = ListingTableUrl::parse(url.as_str())
            .map_err(|e| LakeError::datafusion(format!("raw source {}", self.name), e))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(PARQUET_EXTENSION)
            .with_table_partition_cols(
                self.partition_columns
                    .iter()
                    .map(|c| (c.clone(), DataType::Utf8))
                    .collect(),
            );
        let config = ListingTableConfig::new(table_url)
            .with_listing_options(options)
            .with_schema(self.file_schema.clone());
        let table = ListingTable::try_new(config)
            .map_err(|e| LakeError::datafusion(format!("raw source {}", self.name), e))?;
        Ok(Arc::new(table))
    }
}

/// Reads only the footer: enough to know the file is Parquet and what its columns are.
async fn read_file_schema(
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
) -> Result<SchemaRef, ParquetError> {
    let fetch = RangeFetch {
        store,
        path: meta.location,
    };
    let metadata = ParquetMetaDataReader::new()
        .load_and_finish(fetch, meta.size)
        .await?;
    let file_metadata = metadata.file_metadata();
    let schema = parquet_to_arrow_schema(
        file_metadata.schema_descr(),
        file_metadata.key_value_metadata(),
    )?;
    Ok(Arc::new(schema))
}

struct RangeFetch {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl MetadataFetch for RangeFetch {
    fn fetch(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        })
    }
}

/// Upstream tools leave markers (`_SUCCESS`) and temp files (`.part`): only `*.parquet` is data.
fn is_data_file(meta: &ObjectMeta) -> bool {
    let file_name = meta.location.filename().unwrap_or_default();
    file_name.ends_with(PARQUET_EXTENSION) && !file_name.starts_with(['.', '_'])
}

fn check_partition_folders(
    source: &str,
    prefix: &object_store::path::Path,
    meta: &ObjectMeta,
    partition_columns: &[String],
) -> Result<()> {
    let folders: Vec<String> = meta
        .location
        .prefix_match(prefix)
        .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
        .unwrap_or_default();
    let folders = &folders[..folders.len().saturating_sub(1)];
    for column in partition_columns {
        let found = folders
            .iter()
            .any(|f| f.split_once('=').is_some_and(|(key, _)| key == column));
        if !found {
            return Err(LakeError::SchemaDrift {
                source_name: source.to_string(),
                file: meta.location.to_string(),
                reference_file: format!("the `{column}=<value>/` folder layout"),
                message: format!(
                    "the file is not under a `{column}=<value>/` folder, but the source declares partition column `{column}`"
                ),
            });
        }
    }
    Ok(())
}

/// Writers differ in how they store text and bytes (Spark and pandas write `Utf8`,
/// DataFusion `Utf8View`); those are one type to a reader, not drift.
pub fn same_logical_type(a: &DataType, b: &DataType) -> bool {
    use DataType::{Binary, BinaryView, LargeBinary, LargeUtf8, Utf8, Utf8View};
    a == b
        || matches!(
            (a, b),
            (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View)
                | (
                    Binary | LargeBinary | BinaryView,
                    Binary | LargeBinary | BinaryView
                )
        )
}

/// New columns are accepted (older files read them as NULL); a changed type is drift.
fn merge_schemas(
    source: &str,
    schemas: &[(String, SchemaRef)],
    partition_columns: &[String],
) -> Result<SchemaRef> {
    let mut merged: Vec<(Field, String)> = Vec::new();
    for (file, schema) in schemas {
        for field in schema.fields() {
            if partition_columns.contains(field.name()) {
                return Err(LakeError::SchemaDrift {
                    source_name: source.to_string(),
                    file: file.clone(),
                    reference_file: "the source config".to_string(),
                    message: format!(
                        "column `{}` is stored in the file but is also a declared partition column",
                        field.name()
                    ),
                });
            }
            match merged.iter().find(|(f, _)| f.name() == field.name()) {
                Some((existing, first_file))
                    if !same_logical_type(existing.data_type(), field.data_type()) =>
                {
                    return Err(LakeError::SchemaDrift {
                        source_name: source.to_string(),
                        file: file.clone(),
                        reference_file: first_file.clone(),
                        message: format!(
                            "column `{}` has type {} here but {} in the earlier files",
                            field.name(),
                            field.data_type(),
                            existing.data_type()
                        ),
                    });
                }
                Some(_) => {}
                None => merged.push((field.as_ref().clone().with_nullable(true), file.clone())),
            }
        }
    }
    Ok(Arc::new(Schema::new(
        merged.into_iter().map(|(f, _)| f).collect::<Vec<_>>(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), false))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn added_columns_merge_and_changed_types_are_drift() {
        let a = schema(&[("id", DataType::Utf8)]);
        let b = schema(&[("id", DataType::Utf8), ("amount", DataType::Float64)]);
        let merged = merge_schemas("s", &[("a".into(), a.clone()), ("b".into(), b)], &[]).unwrap();
        assert_eq!(merged.fields().len(), 2);

        let view = schema(&[("id", DataType::Utf8View)]);
        assert!(merge_schemas("s", &[("a".into(), a.clone()), ("v".into(), view)], &[]).is_ok());
        let c = schema(&[("id", DataType::Int64)]);
        let err = merge_schemas("s", &[("a".into(), a), ("c".into(), c)], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c") && err.contains("`id`") && err.contains("Int64"),
            "{err}"
        );
    }
}
