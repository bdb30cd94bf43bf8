//! The `[server]`, `[roles.*]`, `[users.*]` and `[pii]` sections of `cdphub.toml`: how
//! `cdphub serve` listens, who may connect, what each role may read, and which columns hold
//! personal data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{LakeError, Result};

pub const DEFAULT_PORT: u16 = 50051;
pub const DEFAULT_HOST: &str = "127.0.0.1";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Address to bind; loopback unless configured otherwise.
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// PEM certificate chain; TLS is on when both `tls-cert` and `tls-key` are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long a bearer token from the handshake stays valid (`30m`, `8h`, ...).
    #[serde(default = "default_token_ttl", with = "humantime_serde_str")]
    pub token_ttl: Duration,
    /// Memory one query may use before it spills to disk or fails (`512MiB`, `2GiB`).
    #[serde(
        default = "default_memory_limit",
        deserialize_with = "deserialize_size"
    )]
    pub query_memory_limit: u64,
    /// Wall-clock limit of one query, streaming included.
    #[serde(default = "default_query_timeout", with = "humantime_serde_str")]
    pub query_timeout: Duration,
    /// Queries running at once; more wait for a free slot (up to their timeout).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_queries: usize,
    /// How often the catalog is reloaded to pick up newly published Delta versions.
    #[serde(default = "default_refresh", with = "humantime_serde_str")]
    pub catalog_refresh: Duration,
    /// Where sorts and joins spill; default: the system temp directory.
    pub spill_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            tls_cert: None,
            tls_key: None,
            token_ttl: default_token_ttl(),
            query_memory_limit: default_memory_limit(),
            query_timeout: default_query_timeout(),
            max_concurrent_queries: default_max_concurrent(),
            catalog_refresh: default_refresh(),
            spill_dir: None,
        }
    }
}

fn default_host() -> String {
    DEFAULT_HOST.to_string()
}
fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_token_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_memory_limit() -> u64 {
    1 << 30
}
fn default_query_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_max_concurrent() -> usize {
    8
}
fn default_refresh() -> Duration {
    Duration::from_secs(10)
}

/// A role: what it may read, and whether it sees personal data in clear.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoleConfig {
    /// Whole schemas (`marts`), or `*` for every schema.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Single tables (`hub.model_runs`) on top of the schemas.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Sees the columns declared in `[pii]` in clear.
    #[serde(default)]
    pub pii: bool,
    /// May bulk-ingest into `raw.*` over Flight SQL.
    #[serde(default)]
    pub ingest: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserConfig {
    pub role: String,
    /// An argon2 PHC string (`$argon2id$v=19$...`); write it with `cdphub user add`.
    pub password_hash: String,
}

/// Columns holding personal data, masked for roles without the `pii` privilege.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PiiConfig {
    /// Column names masked in every table that has them (`email`, `phone`, ...).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Columns of one table only: `schema.table.column`.
    #[serde(default)]
    pub table_columns: Vec<String>,
}

impl PiiConfig {
    /// Is `column` of `schema.table` personal data?
    pub fn is_pii(&self, schema: &str, table: &str, column: &str) -> bool {
        let column_lower = column.to_ascii_lowercase();
        self.columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&column_lower))
            || self.table_columns.iter().any(|qualified| {
                qualified.eq_ignore_ascii_case(&format!("{schema}.{table}.{column_lower}"))
            })
    }
}

/// Checks the serving sections; called from `Config::validate`.
pub(crate) fn validate(
    server: &ServerConfig,
    roles: &BTreeMap<String, RoleConfig>,
    users: &BTreeMap<String, UserConfig>,
    pii: &PiiConfig,
    path: &Path,
) -> Result<()> {
    let invalid = |message: String| LakeError::ConfigInvalid {
        path: path.to_path_buf(),
        message,
    };
    if server.max_concurrent_queries == 0 {
        return Err(invalid(
            "server.max-concurrent-queries must be at least 1".into(),
        ));
    }
    if server.query_memory_limit < 1 << 20 {
        return Err(invalid(
            "server.query-memory-limit must be at least 1MiB".into(),
        ));
    }
    if server.tls_cert.is_some() != server.tls_key.is_some() {
        return Err(invalid(
            "server.tls-cert and server.tls-key go together: set both for TLS, or neither".into(),
        ));
    }
    for (name, role) in roles {
        for schema in &role.schemas {
            if schema != "*" && !crate::config::is_identifier(schema) {
                return Err(invalid(format!(
                    "roles.{name}.schemas: `{schema}` is not a schema name (or `*`)"
                )));
            }
        }
        for table in &role.tables {
            let parts: Vec<&str> = table.split('.').collect();
            if parts.len() != 2 || !parts.iter().all(|p| crate::config::is_identifier(p)) {
                return Err(invalid(format!(
                    "roles.{name}.tables: `{table}` must be schema.table"
                )));
            }
        }
    }
    for (name, user) in users {
        if !roles.contains_key(&user.role) {
            let known: Vec<&str> = roles.keys().map(String::as_str).collect();
            return Err(invalid(format!(
                "users.{name}.role: role `{}` is not defined (roles: {})",
                user.role,
                if known.is_empty() {
                    "none; add a [roles.<name>] section".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        if !user.password_hash.starts_with("$argon2") {
            return Err(invalid(format!(
                "users.{name}.password-hash: expected an argon2 hash ($argon2id$...), never a plain password; set it with `cdphub user add {name} --role {} --password-stdin`",
                user.role
            )));
        }
    }
    for qualified in &pii.table_columns {
        if qualified.split('.').count() != 3 {
            return Err(invalid(format!(
                "pii.table-columns: `{qualified}` must be schema.table.column"
            )));
        }
    }
    Ok(())
}

/// `512MiB`, `2GiB`, `100MB`, `1048576`: bytes.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 512MiB or 2GiB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB, GiB)")),
    };
    Ok((number * factor as f64) as u64)
}

pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like 30s, 15m or 8h: {e}"))
}

/// An optional size: absent, or a number of bytes or a text like `8GiB`.
pub(crate) fn deserialize_optional_size<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u64>, D::Error> {
    deserialize_size(deserializer).map(Some)
}

fn deserialize_size<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(bytes) => Ok(bytes),
        Size::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

/// Durations as humane strings (`30s`, `8h`).
mod humantime_serde_str {
    use std::time::Duration;

    use serde::Deserialize;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").unwrap_err().contains("parsecs"));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn pii_matches_names_anywhere_and_qualified_columns() {
        let pii = PiiConfig {
            columns: vec!["email".into()],
            table_columns: vec!["staging.identities.id_value".into()],
        };
        assert!(pii.is_pii("raw", "crm_customers", "email"));
        assert!(pii.is_pii("marts", "x", "EMAIL"));
        assert!(pii.is_pii("staging", "identities", "id_value"));
        assert!(!pii.is_pii("staging", "orders", "id_value"));
        assert!(!pii.is_pii("staging", "orders", "order_id"));
    }
}
