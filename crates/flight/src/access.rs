//! Roles from config: which schemas and tables each may read, and who sees personal data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cdphub_lake::Config;
use cdphub_lake::serve_config::{PiiConfig, RoleConfig};

/// A role as the server enforces it.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    all_schemas: bool,
    schemas: BTreeSet<String>,
    tables: BTreeSet<String>,
    /// Sees PII columns in clear.
    pub pii: bool,
    /// May bulk-ingest into `raw.*`.
    pub ingest: bool,
}

impl Role {
    pub fn from_config(name: &str, config: &RoleConfig) -> Self {
        Self {
            name: name.to_string(),
            all_schemas: config.schemas.iter().any(|s| s == "*"),
            schemas: config
                .schemas
                .iter()
                .filter(|s| *s != "*")
                .cloned()
                .collect(),
            tables: config.tables.iter().cloned().collect(),
            pii: config.pii,
            ingest: config.ingest,
        }
    }

    #[cfg(test)]
    pub fn for_tests(name: &str, pii: bool) -> Self {
        Self {
            name: name.to_string(),
            all_schemas: false,
            schemas: ["marts".to_string()].into_iter().collect(),
            tables: BTreeSet::new(),
            pii,
            ingest: false,
        }
    }

    pub fn can_read(&self, schema: &str, table: &str) -> bool {
        self.all_schemas
            || self.schemas.contains(schema)
            || self.tables.contains(&format!("{schema}.{table}"))
    }

    /// Whether any table of `schema` may be read (to decide whether to list the schema).
    pub fn can_see_schema(&self, schema: &str) -> bool {
        self.all_schemas
            || self.schemas.contains(schema)
            || self
                .tables
                .iter()
                .any(|t| t.split_once('.').is_some_and(|(s, _)| s == schema))
    }
}

/// Every role of the config, and the PII declaration.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub roles: BTreeMap<String, Arc<Role>>,
    pub pii: PiiConfig,
}

impl AccessPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            roles: config
                .roles
                .iter()
                .map(|(name, role)| (name.clone(), Arc::new(Role::from_config(name, role))))
                .collect(),
            pii: config.pii.clone(),
        }
    }

    pub fn is_pii(&self, schema: &str, table: &str, column: &str) -> bool {
        self.pii.is_pii(schema, table, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_schema_table_and_star() {
        let analyst = Role::from_config(
            "analyst",
            &RoleConfig {
                schemas: vec!["marts".into()],
                tables: vec!["hub.model_runs".into()],
                pii: false,
                ingest: false,
            },
        );
        assert!(analyst.can_read("marts", "anything"));
        assert!(analyst.can_read("hub", "model_runs"));
        assert!(!analyst.can_read("hub", "audit_log"));
        assert!(!analyst.can_read("raw", "crm_customers"));
        assert!(analyst.can_see_schema("hub"));
        assert!(!analyst.can_see_schema("raw"));
        let admin = Role::from_config(
            "admin",
            &RoleConfig {
                schemas: vec!["*".into()],
                ..RoleConfig::default()
            },
        );
        assert!(admin.can_read("raw", "x"));
    }
}
