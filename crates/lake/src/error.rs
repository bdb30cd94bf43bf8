//! Errors of the lake layer: each variant names the file, table or key involved.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid config in {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },

    #[error("invalid value for {key} (from {origin}): {message}")]
    ConfigValue {
        key: String,
        origin: String,
        message: String,
    },

    #[error("invalid lake URL `{url}`: {message}")]
    LakeUrl { url: String, message: String },

    #[error(
        "cannot reach the lake at {url}: {source}\n  hint: check the lake URL (--lake, CDPHUB_LAKE or [lake] url in cdphub.toml), the endpoint and the credentials"
    )]
    Unreachable {
        url: String,
        source: object_store::Error,
    },

    #[error("object store error on {location}: {source}")]
    ObjectStore {
        location: String,
        source: object_store::Error,
    },

    #[error(
        "raw source `{source_name}`: file {file} is not readable Parquet: {message}\n  hint: re-export the file, or move it out of raw/{source_name}/"
    )]
    CorruptRawFile {
        source_name: String,
        file: String,
        message: String,
    },

    #[error(
        "raw source `{source_name}`: the schema of {file} drifted: {message}\n  hint: fix the upstream export or move the file out of raw/{source_name}/; the other files of the source agree with {reference_file}"
    )]
    SchemaDrift {
        source_name: String,
        file: String,
        reference_file: String,
        message: String,
    },

    #[error("Delta table {table}: {source}")]
    Delta {
        table: String,
        source: deltalake::DeltaTableError,
    },

    #[error("{context}: {source}")]
    DataFusion {
        context: String,
        source: DataFusionError,
    },
}

impl LakeError {
    pub fn object_store(location: impl ToString, source: object_store::Error) -> Self {
        Self::ObjectStore {
            location: location.to_string(),
            source,
        }
    }

    pub fn datafusion(context: impl Into<String>, source: DataFusionError) -> Self {
        Self::DataFusion {
            context: context.into(),
            source,
        }
    }

    pub fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        Self::Delta {
            table: table.into(),
            source,
        }
    }
}

impl From<LakeError> for DataFusionError {
    fn from(err: LakeError) -> Self {
        match err {
            LakeError::DataFusion { source, .. } => source,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<DataFusionError> for LakeError {
    fn from(source: DataFusionError) -> Self {
        Self::datafusion("query failed", source)
    }
}
