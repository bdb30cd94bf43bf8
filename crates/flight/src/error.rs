//! Errors of the Flight SQL server, each mapped to the gRPC status a client can act on.

use std::time::Duration;

use cdphub_lake::LakeError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

pub type Result<T, E = ServeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Unauthenticated(String),

    #[error(
        "permission denied: role `{role}` may not read {table}; ask an administrator to grant it in [roles.{role}] of cdphub.toml"
    )]
    PermissionDenied { role: String, table: String },

    #[error("permission denied: role `{role}` may not {action}")]
    Forbidden { role: String, action: String },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    AlreadyExists(String),

    #[error(
        "the query ran out of memory: it needed more than the per-query limit of {limit} (server.query-memory-limit); add filters or aggregate first. Detail: {detail}"
    )]
    MemoryExhausted { limit: String, detail: String },

    #[error(
        "the query ran longer than the server's limit of {} (server.query-timeout); add filters or ask for a higher limit",
        humantime_like(*.0)
    )]
    Timeout(Duration),

    #[error("the query was cancelled")]
    Cancelled,

    #[error("{0} is not supported by cdphub")]
    Unsupported(String),

    /// Boxed: lake errors are large and this type travels in every `Result` of the server.
    #[error("{0}")]
    Lake(Box<LakeError>),

    #[error("{context}: {source}")]
    DataFusion {
        context: String,
        source: DataFusionError,
    },

    #[error("internal error: {0}")]
    Internal(String),
}

impl From<LakeError> for ServeError {
    fn from(error: LakeError) -> Self {
        Self::Lake(Box::new(error))
    }
}

fn humantime_like(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 60.0 && duration.as_secs().is_multiple_of(60) {
        format!("{}m", duration.as_secs() / 60)
    } else {
        format!("{secs}s")
    }
}

impl ServeError {
    pub fn datafusion(context: impl Into<String>, source: DataFusionError) -> Self {
        // Errors of our own that travelled through DataFusion (a permission check inside the
        // catalog) come back out as themselves.
        if let Some(own) = find_own(&source) {
            return own;
        }
        Self::DataFusion {
            context: context.into(),
            source,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied { .. } | Self::Forbidden { .. } => Code::PermissionDenied,
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::MemoryExhausted { .. } => Code::ResourceExhausted,
            Self::Timeout(_) => Code::DeadlineExceeded,
            Self::Cancelled => Code::Cancelled,
            Self::Unsupported(_) => Code::Unimplemented,
            Self::Lake(_) | Self::Internal(_) => Code::Internal,
            Self::DataFusion { source, .. } => datafusion_code(source),
        }
    }

    /// Short label for the audit log.
    pub fn status_label(&self) -> &'static str {
        match self.code() {
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::InvalidArgument => "invalid_argument",
            Code::NotFound => "not_found",
            Code::ResourceExhausted => "resource_exhausted",
            Code::DeadlineExceeded => "timeout",
            Code::Cancelled => "cancelled",
            _ => "error",
        }
    }
}

/// The classes of DataFusion errors that a client caused, and those that it did not.
fn datafusion_code(error: &DataFusionError) -> Code {
    match error {
        DataFusionError::Context(_, inner) => datafusion_code(inner),
        DataFusionError::Shared(inner) => datafusion_code(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_code(inner),
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::SQL(..) | DataFusionError::SchemaError(..) => Code::InvalidArgument,
        DataFusionError::Plan(message) if is_not_found(message) => Code::NotFound,
        DataFusionError::Plan(_) | DataFusionError::NotImplemented(_) => Code::InvalidArgument,
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => Code::InvalidArgument,
        DataFusionError::Collection(errors) => errors
            .first()
            .map(datafusion_code)
            .unwrap_or(Code::Internal),
        _ => Code::Internal,
    }
}

fn is_not_found(message: &str) -> bool {
    message.starts_with("table '") && message.contains("' not found")
}

/// Our own error, if one is inside a DataFusion error.
fn find_own(error: &DataFusionError) -> Option<ServeError> {
    match error {
        DataFusionError::Context(_, inner) => find_own(inner),
        DataFusionError::Shared(inner) => find_own(inner),
        DataFusionError::Diagnostic(_, inner) => find_own(inner),
        DataFusionError::Collection(errors) => errors.iter().find_map(find_own),
        DataFusionError::External(inner) => {
            let own = inner.downcast_ref::<ServeError>()?;
            Some(match own {
                ServeError::PermissionDenied { role, table } => ServeError::PermissionDenied {
                    role: role.clone(),
                    table: table.clone(),
                },
                ServeError::Forbidden { role, action } => ServeError::Forbidden {
                    role: role.clone(),
                    action: action.clone(),
                },
                ServeError::Cancelled => ServeError::Cancelled,
                ServeError::Timeout(limit) => ServeError::Timeout(*limit),
                other => ServeError::Internal(other.to_string()),
            })
        }
        _ => None,
    }
}

/// A root-cause message without DataFusion's nesting noise.
pub fn clean_message(error: &DataFusionError) -> String {
    match error {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            clean_message(inner)
        }
        DataFusionError::Shared(inner) => clean_message(inner),
        DataFusionError::Plan(m) | DataFusionError::Execution(m) => m.clone(),
        DataFusionError::ResourcesExhausted(m) => m.clone(),
        other => other.to_string(),
    }
}

impl From<ServeError> for Status {
    fn from(error: ServeError) -> Self {
        let code = error.code();
        let message = match &error {
            ServeError::DataFusion { context, source } => {
                let hint = if code == Code::NotFound {
                    "; names are schema-qualified (raw.x, staging.x, identity.x, marts.x, hub.x) and GetTables lists what your role may read"
                } else {
                    ""
                };
                format!("{context}: {}{hint}", clean_message(source))
            }
            other => other.to_string(),
        };
        Status::new(code, message)
    }
}

impl From<ServeError> for DataFusionError {
    fn from(error: ServeError) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_survives_datafusion_wrapping() {
        let own = ServeError::PermissionDenied {
            role: "analyst".into(),
            table: "raw.crm_customers".into(),
        };
        let wrapped = DataFusionError::Context("planning".into(), Box::new(own.into()));
        let back = ServeError::datafusion("query", wrapped);
        assert_eq!(back.code(), Code::PermissionDenied);
        let status = Status::from(back);
        assert!(status.message().contains("raw.crm_customers"), "{status:?}");
    }

    #[test]
    fn datafusion_errors_map_to_client_codes() {
        let not_found = DataFusionError::Plan("table 'cdphub.marts.nope' not found".into());
        assert_eq!(datafusion_code(&not_found), Code::NotFound);
        let oom = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        assert_eq!(datafusion_code(&oom), Code::ResourceExhausted);
        let bad = DataFusionError::Plan("No field named x".into());
        assert_eq!(datafusion_code(&bad), Code::InvalidArgument);
        let status = Status::from(ServeError::datafusion("query", not_found));
        assert!(status.message().contains("schema-qualified"), "{status:?}");
    }
}
