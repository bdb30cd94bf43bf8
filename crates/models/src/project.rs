//! Model discovery: `sql/<schema>/<name>.sql` builds `<schema>.<name>`, settings in `<name>.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use cdphub_lake::CURATED_SCHEMAS;
use cdphub_lake::config::is_identifier;
use datafusion::common::TableReference;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, Statement as SqlStatement, TableFactor, Value,
    Visit, Visitor,
};
use serde::Deserialize;
use std::ops::ControlFlow;

use crate::error::{ModelError, Result};

/// `schema.table`, the one name of a model and of the table it builds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelName {
    pub schema: String,
    pub table: String,
}

impl ModelName {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// The sidecar `<name>.toml` of a model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelSettings {
    pub description: Option<String>,
    #[serde(default)]
    pub materialized: Materialization,
    /// For `incremental`: new rows replace kept rows with the same key (empty: append).
    #[serde(default)]
    pub unique_key: Vec<String>,
    /// Columns that clients look single rows up by (`WHERE unified_id = ...`): the table is
    /// published sorted by them, in small Parquet pages, so such a lookup reads a few KB.
    #[serde(default)]
    pub lookup_keys: Vec<String>,
    /// Columns the Delta table is partitioned by: a query filtering on them (`WHERE source =
    /// 'orders'`) opens only the matching files, and the planner sizes joins on those rows.
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub tests: DataTests,
    /// Set for audiences (`sql/marts/audiences/`): the consent purpose they are for.
    pub audience: Option<crate::audience::AudienceSettings>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Materialization {
    /// Rebuilt in full and replaced in one Delta commit.
    #[default]
    Table,
    /// Keeps the rows already published and adds this run's rows, in one Delta commit
    /// (history tables such as `identity.merge_history`).
    Incremental,
}

/// Data tests; any failing row stops the model before its table is published.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DataTests {
    /// Column lists that must be unique; `"a, b"` tests the pair.
    #[serde(default)]
    pub unique: Vec<String>,
    #[serde(default)]
    pub not_null: Vec<String>,
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub relationships: Vec<Relationship>,
    /// Queries that must return no rows.
    #[serde(default)]
    pub sql: Vec<SqlTest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Relationship {
    pub column: String,
    /// `schema.table` that must hold every non-null value of `column`.
    pub to: String,
    pub field: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SqlTest {
    pub name: String,
    pub query: String,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: ModelName,
    pub path: PathBuf,
    pub sql: String,
    pub settings: ModelSettings,
    /// Tables the SQL reads (CTEs excluded), as written.
    pub reads: Vec<TableReference>,
    /// Tables the data tests read besides the model itself.
    pub test_reads: Vec<TableReference>,
    /// Tables named as arguments of table functions (`stitch('identity.links')`); the model
    /// itself may be one of them, meaning its last published version.
    pub function_reads: Vec<TableReference>,
}

impl Model {
    pub fn load(models_dir: &Path, path: &Path) -> Result<Self> {
        let name = model_name(models_dir, path)?;
        let sql = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let reads = query_reads(&sql).map_err(|message| ModelError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let function_reads = function_table_arguments(&sql);
        let settings_path = path.with_extension("toml");
        let mut settings = if settings_path.exists() {
            load_settings(&settings_path)?
        } else {
            ModelSettings::default()
        };
        let in_audiences = path
            .strip_prefix(models_dir)
            .is_ok_and(crate::audience::in_audience_folder);
        crate::audience::check(&name, in_audiences, &mut settings, &settings_path)?;
        let mut test_reads = Vec::new();
        for relationship in &settings.tests.relationships {
            test_reads.push(TableReference::from(relationship.to.as_str()));
        }
        for test in &settings.tests.sql {
            let reads = query_reads(&test.query).map_err(|message| ModelError::Settings {
                path: settings_path.clone(),
                message: format!("test `{}`: SQL does not parse: {message}", test.name),
            })?;
            test_reads.extend(reads);
        }
        Ok(Self {
            name,
            path: path.to_path_buf(),
            sql,
            settings,
            reads,
            test_reads,
            function_reads,
        })
    }
}

fn model_name(models_dir: &Path, path: &Path) -> Result<ModelName> {
    let layout = |message: String| ModelError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let relative = path
        .strip_prefix(models_dir)
        .map_err(|_| layout("not under the models folder".to_string()))?;
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    let (Some(schema), Some(table)) = (
        parts.first().filter(|_| parts.len() >= 2),
        path.file_stem().and_then(|s| s.to_str()),
    ) else {
        return Err(layout(
            "a model file must sit in a schema folder: sql/<schema>/<name>.sql".to_string(),
        ));
    };
    if !CURATED_SCHEMAS.contains(schema) {
        return Err(layout(format!(
            "unknown schema folder `{schema}`; models live in {}",
            CURATED_SCHEMAS
                .iter()
                .map(|s| format!("sql/{s}/"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !is_identifier(table) {
        return Err(layout(format!(
            "`{table}` is not a snake_case table name (letters, digits and `_`)"
        )));
    }
    Ok(ModelName::new(*schema, table))
}

fn load_settings(path: &Path) -> Result<ModelSettings> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let settings: ModelSettings = toml::from_str(&text).map_err(|e| ModelError::Settings {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let tests = &settings.tests;
    let columns = tests
        .unique
        .iter()
        .flat_map(|c| c.split(','))
        .chain(tests.not_null.iter().map(String::as_str))
        .chain(tests.accepted_values.keys().map(String::as_str))
        .chain(tests.relationships.iter().map(|r| r.column.as_str()))
        .chain(tests.relationships.iter().map(|r| r.field.as_str()));
    for column in columns {
        if !is_identifier(column.trim()) {
            return Err(ModelError::Settings {
                path: path.to_path_buf(),
                message: format!("`{column}` is not a snake_case column name"),
            });
        }
    }
    Ok(settings)
}

/// The tables one SQL query reads, CTE names excluded. Exactly one query is allowed.
/// Table function calls such as `stitch(...)` are not tables; see
/// [`function_table_arguments`] for what they read.
pub fn query_reads(sql: &str) -> std::result::Result<Vec<TableReference>, String> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| e.to_string())?;
    if statements.len() != 1 {
        return Err(format!(
            "expected exactly one query, found {} statements",
            statements.len()
        ));
    }
    let statement = statements.pop_front().expect("one statement");
    let Statement::Statement(inner) = &statement else {
        return Err("a model must be a query (SELECT or WITH ... SELECT)".to_string());
    };
    if !matches!(inner.as_ref(), SqlStatement::Query(_)) {
        return Err("a model must be a query (SELECT or WITH ... SELECT)".to_string());
    }
    let mut calls = TableFunctionCalls::default();
    let _ = inner.visit(&mut calls);
    let (tables, _ctes) = resolve_table_references(&statement, true).map_err(|e| e.to_string())?;
    Ok(tables
        .into_iter()
        .filter(|t| !calls.functions.contains(&t.to_string()))
        .collect())
}

/// The quoted `schema.table` arguments of table function calls in a query that
/// [`query_reads`] accepted. A model may name itself there to read its previous version.
pub fn function_table_arguments(sql: &str) -> Vec<TableReference> {
    let mut calls = TableFunctionCalls::default();
    if let Ok(statements) = DFParser::parse_sql(sql) {
        for statement in statements {
            if let Statement::Statement(inner) = statement {
                let _ = inner.visit(&mut calls);
            }
        }
    }
    calls.table_arguments
}

/// Table function names, and the quoted `schema.table` arguments they were given.
#[derive(Default)]
struct TableFunctionCalls {
    functions: Vec<String>,
    table_arguments: Vec<TableReference>,
}

impl Visitor for TableFunctionCalls {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
        {
            self.functions.push(name.to_string());
            for arg in &args.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(value))) = arg
                    && let Value::SingleQuotedString(text) = &value.value
                    && let Some((schema, table)) = text.split_once('.')
                    && is_identifier(schema)
                    && is_identifier(table)
                {
                    self.table_arguments
                        .push(TableReference::partial(schema, table));
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Finds every model below `models_dir`, in path order.
pub fn discover(models_dir: &Path) -> Result<Vec<Model>> {
    let mut files = Vec::new();
    collect_sql_files(models_dir, &mut files)?;
    files.sort();
    let mut models: Vec<Model> = Vec::new();
    for file in files {
        let model = Model::load(models_dir, &file)?;
        if let Some(other) = models.iter().find(|m| m.name == model.name) {
            return Err(ModelError::Duplicate {
                model: model.name.to_string(),
                first: other.path.clone(),
                second: model.path,
            });
        }
        models.push(model);
    }
    Ok(models)
}

fn collect_sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ModelError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let path = entry
            .map_err(|source| ModelError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            collect_sql_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exclude_ctes_and_keep_qualified_names() {
        let reads = query_reads(
            "WITH recent AS (SELECT * FROM raw.orders) SELECT * FROM recent JOIN staging.x USING (id)",
        )
        .unwrap();
        let names: Vec<String> = reads.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, vec!["raw.orders", "staging.x"]);
    }

    #[test]
    fn table_functions_read_their_quoted_table_arguments() {
        let sql = "SELECT * FROM stitch('identity.links', 'identity.identifiers', '{}') s JOIN marts.x USING (id)";
        let names: Vec<String> = query_reads(sql)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(names, vec!["marts.x"]);
        let arguments: Vec<String> = function_table_arguments(sql)
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(arguments, vec!["identity.links", "identity.identifiers"]);
    }

    #[test]
    fn non_queries_and_garbage_are_refused() {
        assert!(query_reads("DROP TABLE raw.orders").is_err());
        assert!(query_reads("SELEC 1").is_err());
        assert!(query_reads("SELECT 1; SELECT 2").is_err());
    }
}
