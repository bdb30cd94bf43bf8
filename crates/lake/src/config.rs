//! `cdphub.toml`: the project configuration, overridden by `CDPHUB_*` env vars, then by flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{LakeError, Result};
pub use crate::serve_config::{PiiConfig, RoleConfig, ServerConfig, UserConfig};

pub const CONFIG_FILE_NAME: &str = "cdphub.toml";
/// The embedded default lake, relative to the project directory.
pub const DEFAULT_LAKE: &str = "data/lake";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub lake: LakeConfig,
    #[serde(default)]
    pub run: RunConfig,
    /// Raw sources by name; each becomes the table `raw.<name>`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Identifier cleaning and stitching rules.
    #[serde(default)]
    pub identity: cdphub_functions::IdentityConfig,
    /// `cdphub serve`: listen address, TLS, limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Roles by name: what each may read over Flight SQL.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    /// Flight SQL users by name, with their role and argon2 password hash.
    #[serde(default)]
    pub users: BTreeMap<String, UserConfig>,
    /// Columns holding personal data, masked for roles without `pii`.
    #[serde(default)]
    pub pii: PiiConfig,
    /// Settings of the customer marts (the analysis date).
    #[serde(default)]
    pub analytics: cdphub_functions::AnalyticsConfig,
    /// Journeys, channel grouping, conversions and attribution models.
    #[serde(default)]
    pub attribution: cdphub_functions::AttributionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LakeConfig {
    /// A directory (relative to the project), `file:///abs`, `s3://bucket/prefix` or `memory://`.
    #[serde(default = "default_lake_url")]
    pub url: String,
    #[serde(default)]
    pub s3: S3Config,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            url: default_lake_url(),
            s3: S3Config::default(),
        }
    }
}

fn default_lake_url() -> String {
    DEFAULT_LAKE.to_string()
}

/// Options for `s3://` lakes. Anything left unset falls back to the standard `AWS_*` variables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    /// How many independent models may run at the same time.
    #[serde(default = "default_parallel_models")]
    pub max_parallel_models: usize,
    /// Memory that all the queries of one process share (`cdphub run`, `query`, `export`)
    /// before sorts and aggregates spill to disk and what cannot spill fails with an error
    /// naming its biggest consumers. Default: none. Off by default because DataFusion 55
    /// counts the shared buffers of sliced arrays once per slice: a journeys sort that peaks
    /// at 2 GB of real memory is counted as 16 GB and would fail.
    #[serde(
        default,
        deserialize_with = "crate::serve_config::deserialize_optional_size"
    )]
    pub memory_limit: Option<u64>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            max_parallel_models: default_parallel_models(),
            memory_limit: None,
        }
    }
}

fn default_parallel_models() -> usize {
    2
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    Parquet,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceConfig {
    /// Folder under `raw/`; defaults to the source name.
    pub path: Option<String>,
    pub format: SourceFormat,
    /// Hive-style partition folders (`key=value/`), read as text columns.
    #[serde(default)]
    pub partition_columns: Vec<String>,
}

impl SourceConfig {
    /// A plain folder of Parquet files, as bulk ingest writes them.
    pub fn unpartitioned() -> Self {
        Self {
            path: None,
            format: SourceFormat::Parquet,
            partition_columns: Vec::new(),
        }
    }

    pub fn folder<'a>(&'a self, name: &'a str) -> &'a str {
        self.path.as_deref().unwrap_or(name).trim_matches('/')
    }
}

/// A loaded project: where it lives and what its config says.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub config: Config,
}

/// Overrides that come from command-line flags; they win over env and file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub lake: Option<String>,
}

impl Project {
    /// Loads `<dir>/cdphub.toml`, then applies `CDPHUB_*` env vars and the flag overrides.
    pub fn load(dir: &Path, overrides: &Overrides) -> Result<Self> {
        Self::load_with_env(dir, overrides, |key| std::env::var(key).ok())
    }

    pub fn load_with_env(
        dir: &Path,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let config_path = dir.join(CONFIG_FILE_NAME);
        let text = std::fs::read_to_string(&config_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                LakeError::ConfigInvalid {
                    path: config_path.clone(),
                    message: format!(
                        "file not found; run cdphub from a project directory or pass --project <dir> (the repository root has an example {CONFIG_FILE_NAME})"
                    ),
                }
            } else {
                LakeError::ConfigRead {
                    path: config_path.clone(),
                    source,
                }
            }
        })?;
        let mut config = Config::parse(&text, &config_path)?;
        config.apply_env(env)?;
        if let Some(lake) = &overrides.lake {
            config.lake.url = lake.clone();
        }
        config.validate(&config_path)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config_path,
            config,
        })
    }

    pub fn models_dir(&self) -> PathBuf {
        self.dir.join("sql")
    }
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|err| LakeError::ConfigInvalid {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })
    }

    /// The documented `CDPHUB_*` variables, each overriding one key of the file.
    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let s3 = &mut self.lake.s3;
        let text_overrides: [(&str, &mut Option<String>); 4] = [
            ("CDPHUB_S3_ENDPOINT", &mut s3.endpoint),
            ("CDPHUB_S3_REGION", &mut s3.region),
            ("CDPHUB_S3_ACCESS_KEY_ID", &mut s3.access_key_id),
            ("CDPHUB_S3_SECRET_ACCESS_KEY", &mut s3.secret_access_key),
        ];
        for (key, slot) in text_overrides {
            if let Some(value) = env(key) {
                *slot = Some(value);
            }
        }
        if let Some(value) = env("CDPHUB_S3_ALLOW_HTTP") {
            s3.allow_http = Some(parse_env_value(
                "CDPHUB_S3_ALLOW_HTTP",
                &value,
                "true or false",
            )?);
        }
        if let Some(value) = env("CDPHUB_LAKE") {
            self.lake.url = value;
        }
        let server = &mut self.server;
        if let Some(value) = env("CDPHUB_SERVER_HOST") {
            server.host = value;
        }
        if let Some(value) = env("CDPHUB_SERVER_PORT") {
            server.port = parse_env_value("CDPHUB_SERVER_PORT", &value, "a port number")?;
        }
        if let Some(value) = env("CDPHUB_SERVER_TLS_CERT") {
            server.tls_cert = Some(value.into());
        }
        if let Some(value) = env("CDPHUB_SERVER_TLS_KEY") {
            server.tls_key = Some(value.into());
        }
        let durations: [(&str, &mut std::time::Duration); 3] = [
            ("CDPHUB_SERVER_TOKEN_TTL", &mut server.token_ttl),
            ("CDPHUB_SERVER_QUERY_TIMEOUT", &mut server.query_timeout),
            ("CDPHUB_SERVER_CATALOG_REFRESH", &mut server.catalog_refresh),
        ];
        for (key, slot) in durations {
            if let Some(value) = env(key) {
                *slot = crate::serve_config::parse_duration(&value).map_err(env_error(key))?;
            }
        }
        if let Some(value) = env("CDPHUB_SERVER_QUERY_MEMORY_LIMIT") {
            server.query_memory_limit = crate::serve_config::parse_size(&value)
                .map_err(env_error("CDPHUB_SERVER_QUERY_MEMORY_LIMIT"))?;
        }
        if let Some(value) = env("CDPHUB_SERVER_MAX_CONCURRENT_QUERIES") {
            server.max_concurrent_queries = parse_env_value(
                "CDPHUB_SERVER_MAX_CONCURRENT_QUERIES",
                &value,
                "a whole number of at least 1",
            )?;
        }
        if let Some(value) = env("CDPHUB_ANALYTICS_AS_OF") {
            let date = cdphub_functions::analytics::parse_as_of(&value)
                .map_err(env_error("CDPHUB_ANALYTICS_AS_OF"))?;
            self.analytics.as_of = Some(date);
        }
        if let Some(value) = env("CDPHUB_RUN_MEMORY_LIMIT") {
            self.run.memory_limit = Some(
                crate::serve_config::parse_size(&value)
                    .map_err(env_error("CDPHUB_RUN_MEMORY_LIMIT"))?,
            );
        }
        if let Some(value) = env("CDPHUB_RUN_MAX_PARALLEL_MODELS") {
            self.run.max_parallel_models = parse_env_value(
                "CDPHUB_RUN_MAX_PARALLEL_MODELS",
                &value,
                "a whole number of at least 1",
            )?;
        }
        Ok(())
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let invalid = |message: String| LakeError::ConfigInvalid {
            path: path.to_path_buf(),
            message,
        };
        if self.run.max_parallel_models == 0 {
            return Err(invalid(
                "run.max-parallel-models must be at least 1".to_string(),
            ));
        }
        cdphub_functions::StitchRules::compile(&self.identity, &path.display().to_string())
            .map_err(|e| identity_config_error(path, e))?;
        self.attribution
            .compile(&path.display().to_string())
            .map_err(|e| identity_config_error(path, e))?;
        if self.lake.url.trim().is_empty() {
            return Err(invalid("lake.url must not be empty".to_string()));
        }
        crate::serve_config::validate(&self.server, &self.roles, &self.users, &self.pii, path)?;
        for (name, source) in &self.sources {
            if !is_identifier(name) {
                return Err(invalid(format!(
                    "sources.{name}: a source name must be snake_case (letters, digits, `_`), because it becomes the table raw.{name}"
                )));
            }
            for column in &source.partition_columns {
                if !is_identifier(column) {
                    return Err(invalid(format!(
                        "sources.{name}.partition-columns: `{column}` is not a valid column name"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// An `[identity]` or `[attribution]` problem, reported like every other config problem.
pub(crate) fn identity_config_error(
    path: &Path,
    error: cdphub_functions::FunctionError,
) -> LakeError {
    let message = match error {
        cdphub_functions::FunctionError::Config { key, message, .. } => format!("{key}: {message}"),
        other => other.to_string(),
    };
    LakeError::ConfigInvalid {
        path: path.to_path_buf(),
        message,
    }
}

fn parse_env_value<T: std::str::FromStr>(key: &str, value: &str, expected: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| env_error(key)(format!("`{value}` is not {expected}")))
}

/// The error of environment variable `key`, from a parser's message.
fn env_error(key: &str) -> impl FnOnce(String) -> LakeError + '_ {
    move |message| LakeError::ConfigValue {
        key: key.to_string(),
        origin: "environment".to_string(),
        message,
    }
}

/// snake_case identifiers: what DataFusion resolves without quoting.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("cdphub.toml"))
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        let err = parse("[lake]\nurll = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("cdphub.toml"), "{err}");
        assert!(err.contains("urll"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse("[run]\nmax-parallel-models = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-parallel-models"), "{err}");
    }

    #[test]
    fn run_memory_limit_from_file_or_env() {
        let config = parse("[run]\nmemory-limit = \"8GiB\"\n").unwrap();
        assert_eq!(config.run.memory_limit, Some(8 << 30));
        assert_eq!(parse("").unwrap().run.memory_limit, None);
        let err = parse("[run]\nmemory-limit = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("memory-limit") && err.contains("lots"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), "").unwrap();
        let env = |key: &str| (key == "CDPHUB_RUN_MEMORY_LIMIT").then(|| "512MiB".to_string());
        let project = Project::load_with_env(dir.path(), &Overrides::default(), env).unwrap();
        assert_eq!(project.config.run.memory_limit, Some(512 << 20));
    }

    #[test]
    fn missing_source_format_is_reported() {
        let err = parse("[sources.orders]\npath = \"orders\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_flag_overrides_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "[lake]\nurl = \"from-file\"\n",
        )
        .unwrap();
        let env = |key: &str| (key == "CDPHUB_LAKE").then(|| "from-env".to_string());
        let project = Project::load_with_env(dir.path(), &Overrides::default(), env).unwrap();
        assert_eq!(project.config.lake.url, "from-env");
        let flags = Overrides {
            lake: Some("from-flag".into()),
        };
        let project = Project::load_with_env(dir.path(), &flags, env).unwrap();
        assert_eq!(project.config.lake.url, "from-flag");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), "").unwrap();
        let env = |key: &str| (key == "CDPHUB_S3_ALLOW_HTTP").then(|| "maybe".to_string());
        let err = Project::load_with_env(dir.path(), &Overrides::default(), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CDPHUB_S3_ALLOW_HTTP"), "{err}");
    }

    #[test]
    fn server_roles_users_and_pii_parse_with_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            r#"
[server]
port = 6000
query-memory-limit = "256MiB"
query-timeout = "90s"

[roles.analyst]
schemas = ["marts"]
tables = ["hub.model_runs"]

[users.ana]
role = "analyst"
password-hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"

[pii]
columns = ["email"]
table-columns = ["staging.identities.id_value"]
"#,
        )
        .unwrap();
        let env = |key: &str| match key {
            "CDPHUB_SERVER_PORT" => Some("7000".to_string()),
            "CDPHUB_SERVER_TOKEN_TTL" => Some("30m".to_string()),
            _ => None,
        };
        let project = Project::load_with_env(dir.path(), &Overrides::default(), env).unwrap();
        let server = &project.config.server;
        assert_eq!(server.port, 7000);
        assert_eq!(server.host, "127.0.0.1");
        assert_eq!(server.query_memory_limit, 256 << 20);
        assert_eq!(server.query_timeout, std::time::Duration::from_secs(90));
        assert_eq!(server.token_ttl, std::time::Duration::from_secs(1800));
        assert_eq!(project.config.users["ana"].role, "analyst");
        assert!(
            project
                .config
                .pii
                .is_pii("staging", "identities", "id_value")
        );
    }

    #[test]
    fn users_need_a_defined_role_and_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(CONFIG_FILE_NAME), text).unwrap();
        let load = || {
            Project::load_with_env(dir.path(), &Overrides::default(), |_| None)
                .unwrap_err()
                .to_string()
        };
        write("[users.ana]\nrole = \"ghost\"\npassword-hash = \"$argon2id$x\"\n");
        let err = load();
        assert!(
            err.contains("users.ana.role") && err.contains("ghost"),
            "{err}"
        );
        write("[roles.r]\n[users.ana]\nrole = \"r\"\npassword-hash = \"secret\"\n");
        let err = load();
        assert!(err.contains("users.ana.password-hash"), "{err}");
        write("[server]\nquery-timeout = \"soon\"\n");
        let err = load();
        assert!(
            err.contains("query-timeout") || err.contains("soon"),
            "{err}"
        );
        let env =
            |key: &str| (key == "CDPHUB_SERVER_QUERY_MEMORY_LIMIT").then(|| "lots".to_string());
        write("");
        let err = Project::load_with_env(dir.path(), &Overrides::default(), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CDPHUB_SERVER_QUERY_MEMORY_LIMIT"), "{err}");
    }

    #[test]
    fn analytics_as_of_from_file_and_env() {
        let config = parse("[analytics]\nas-of = \"2026-06-30\"\n").unwrap();
        assert_eq!(config.analytics.as_of.unwrap().to_string(), "2026-06-30");
        let err = parse("[analytics]\nas-of = \"30/06/2026\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cdphub.toml") && err.contains("as-of"),
            "{err}"
        );
        assert!(err.contains("YYYY-MM-DD"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE_NAME), "").unwrap();
        let env = |key: &str| (key == "CDPHUB_ANALYTICS_AS_OF").then(|| "2025-12-31".to_string());
        let project = Project::load_with_env(dir.path(), &Overrides::default(), env).unwrap();
        assert_eq!(
            project.config.analytics.as_of.unwrap().to_string(),
            "2025-12-31"
        );
        let env = |key: &str| (key == "CDPHUB_ANALYTICS_AS_OF").then(|| "tomorrow".to_string());
        let err = Project::load_with_env(dir.path(), &Overrides::default(), env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CDPHUB_ANALYTICS_AS_OF") && err.contains("YYYY-MM-DD"),
            "{err}"
        );
    }

    #[test]
    fn attribution_errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "[attribution]\nmodels = [\"linear\", \"w_shaped\"]\n",
                "attribution.models: unknown attribution model `w_shaped`",
            ),
            (
                "[attribution]\nposition-weights = { first = 0.5, middle = 0.3, last = 0.4 }\n",
                "attribution.position-weights: position-based weights first=0.5, middle=0.3, last=0.4: the weights do not sum to 1",
            ),
            (
                "[attribution]\nhalf-life-days = -7\n",
                "attribution.half-life-days: time-decay half-life of -7 days",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(dir.path().join(CONFIG_FILE_NAME), text).unwrap();
            let err = Project::load_with_env(dir.path(), &Overrides::default(), |_| None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(CONFIG_FILE_NAME), "{err}");
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn missing_file_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::load_with_env(dir.path(), &Overrides::default(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--project"), "{err}");
    }
}
