//! Errors of the model layer: each names the model, its file, or the table involved.

use std::path::PathBuf;

use cdphub_lake::LakeError;
use datafusion::error::DataFusionError;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },

    #[error(
        "{path}: SQL does not parse: {message}\n  hint: a model is one DataFusion SQL query; try it with `cdphub query`"
    )]
    Parse { path: PathBuf, message: String },

    #[error("{path}: invalid model settings: {message}")]
    Settings { path: PathBuf, message: String },

    #[error("{path}: model {model} reads unknown table `{table}`{hint}")]
    UnknownTable {
        path: PathBuf,
        model: String,
        table: String,
        hint: String,
    },

    #[error(
        "the models form a cycle: {cycle}\n  files: {files}\n  hint: a model cannot read, directly or not, its own output"
    )]
    Cycle { cycle: String, files: String },

    #[error("two files build {model}: {first} and {second}")]
    Duplicate {
        model: String,
        first: PathBuf,
        second: PathBuf,
    },

    #[error("--select {selector}: no model matches{hint}")]
    UnknownSelector { selector: String, hint: String },

    #[error(transparent)]
    Lake(Box<LakeError>),

    #[error("model {model}: {source}")]
    Execution {
        model: String,
        source: DataFusionError,
    },

    #[error("model {model}: {message}")]
    Input { model: String, message: String },

    #[error(
        "model {model}: data test `{test}` failed: {failing_rows} failing row(s); the previous version stays published\n{sample}"
    )]
    DataTestFailed {
        model: String,
        test: String,
        failing_rows: u64,
        sample: String,
    },
}

impl From<ModelError> for DataFusionError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Execution { source, .. } => source,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<LakeError> for ModelError {
    fn from(err: LakeError) -> Self {
        Self::Lake(Box::new(err))
    }
}

impl From<DataFusionError> for ModelError {
    fn from(source: DataFusionError) -> Self {
        Self::Execution {
            model: "(query)".to_string(),
            source,
        }
    }
}
