//! Errors of the SQL functions, convertible both ways with DataFusion's.

use datafusion::error::DataFusionError;

pub type Result<T, E = FunctionError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("{origin}: {key}: {message}")]
    Config {
        key: String,
        origin: String,
        message: String,
    },
    #[error("stitch: input table {table}: {message}")]
    StitchInput { table: String, message: String },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<FunctionError> for DataFusionError {
    fn from(error: FunctionError) -> Self {
        match error {
            FunctionError::DataFusion(inner) => inner,
            other => DataFusionError::Plan(other.to_string()),
        }
    }
}
