//! cdphub's Arrow Flight SQL server: every table of the catalog, for BI tools, notebooks and SQL
//! clients, with bearer-token auth, roles, PII masking, limits and an audit log.
//!
//! - [`server::FlightServer`] binds and runs it;
//! - [`service`] is the protocol surface (handshake, metadata, statements, prepared statements,
//!   bulk ingest, cancel);
//! - [`engine`] plans and streams queries under the session's role ([`secure`] masks PII inside
//!   the table scans), with a per-query memory pool, a timeout and a concurrency limit;
//! - [`audit`] records every query in `hub.audit_log`.

pub mod access;
pub mod audit;
pub mod auth;
pub mod engine;
pub mod error;
pub mod ingest;
pub mod secure;
pub mod server;
pub mod service;
pub mod sql_info;
pub mod tls;

pub use auth::hash_password;
pub use error::{Result, ServeError};
pub use server::{DEMO_PASSWORDS, FlightServer};
