//! The crate's error type: every variant says what failed and where.

/// Everything that can go wrong while generating the demo lake.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    /// The options cannot produce a dataset (scale not a finite number in range, ...).
    #[error("invalid generate options: {reason}")]
    InvalidOptions { reason: String },

    /// An object store call failed; `path` is the object or prefix involved.
    #[error(
        "object store {operation} failed at `{path}`: {source} (check that the lake root exists and is writable)"
    )]
    ObjectStore {
        operation: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// Encoding or uploading one Parquet file failed.
    #[error("writing Parquet file `{path}` failed: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// Assembling an Arrow record batch failed (a bug in the generator).
    #[error("building an Arrow batch for `{table}` failed: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },

    /// A background generation thread died before finishing its chunk of persons.
    #[error("a generator worker for persons {first}..{end} failed: {reason}")]
    Worker {
        first: u64,
        end: u64,
        reason: String,
    },
}

impl DatagenError {
    pub(crate) fn store(
        operation: &'static str,
        path: &object_store::path::Path,
        source: object_store::Error,
    ) -> Self {
        Self::ObjectStore {
            operation,
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn parquet(
        path: &object_store::path::Path,
        source: parquet::errors::ParquetError,
    ) -> Self {
        Self::Parquet {
            path: path.to_string(),
            source,
        }
    }
}
