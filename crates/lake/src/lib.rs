//! The lake: configuration, object storage, Delta tables and the SQL catalog over them.

pub mod catalog;
pub mod config;
pub mod delta;
pub mod error;
pub mod join_planning;
pub mod location;
pub mod raw;
pub mod serve_config;
pub mod shared_subplans;

pub use catalog::{CATALOG, CURATED_SCHEMAS, Catalog, HUB_SCHEMA, RAW_SCHEMA};
pub use config::{Config, Overrides, Project};
pub use error::{LakeError, Result};
pub use location::Lake;
