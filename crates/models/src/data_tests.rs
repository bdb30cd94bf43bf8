//! Data tests run against a model's staged output, with the model's name pointing at it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cdphub_lake::CATALOG;
use datafusion::arrow::array::Int64Array;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    SchemaProvider, TableProvider,
};
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::project::{DataTests, ModelName};

/// One test as SQL that returns the failing rows.
#[derive(Debug, Clone)]
pub struct DataTest {
    pub name: String,
    pub query: String,
    /// For a not-null test, the quoted column: all of a model's null checks share one scan.
    null_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestStatus {
    Pass,
    Fail,
    /// The test itself could not run (bad SQL, missing column).
    Error,
}

impl fmt::Display for TestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
        })
    }
}

#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub name: String,
    pub query: String,
    pub status: TestStatus,
    pub failing_rows: u64,
    /// Up to five failing rows, or the error, for the person reading the run.
    pub detail: String,
}

/// Expands the settings into SQL over `model`.
pub fn compile(model: &ModelName, tests: &DataTests) -> Vec<DataTest> {
    let table = model.to_string();
    let mut out = Vec::new();
    for columns in &tests.unique {
        let cols: Vec<String> = columns.split(',').map(|c| quote(c.trim())).collect();
        let list = cols.join(", ");
        let not_null = cols
            .iter()
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        out.push(DataTest {
            name: format!("unique({})", columns.replace(' ', "")),
            query: format!(
                "SELECT {list}, count(*) AS occurrences FROM {table} WHERE {not_null} GROUP BY {list} HAVING count(*) > 1"
            ),
            null_check: None,
        });
    }
    for column in &tests.not_null {
        let col = quote(column);
        out.push(DataTest {
            name: format!("not_null({column})"),
            query: format!("SELECT * FROM {table} WHERE {col} IS NULL"),
            null_check: Some(col),
        });
    }
    for (column, values) in &tests.accepted_values {
        let list = values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let col = quote(column);
        out.push(DataTest {
            name: format!("accepted_values({column})"),
            query: format!(
                "SELECT {col}, count(*) AS occurrences FROM {table} WHERE {col} IS NOT NULL AND CAST({col} AS VARCHAR) NOT IN ({list}) GROUP BY {col}"
            ),
            null_check: None,
        });
    }
    for relation in &tests.relationships {
        let (col, field) = (quote(&relation.column), quote(&relation.field));
        out.push(DataTest {
            name: format!(
                "relationships({} -> {}.{})",
                relation.column, relation.to, relation.field
            ),
            query: format!(
                "SELECT child.{col}, count(*) AS occurrences FROM {table} AS child \
                 WHERE child.{col} IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM {to} AS parent WHERE parent.{field} = child.{col}) GROUP BY child.{col}",
                to = relation.to
            ),
            null_check: None,
        });
    }
    for test in &tests.sql {
        out.push(DataTest {
            name: test.name.clone(),
            query: test.query.clone(),
            null_check: None,
        });
    }
    out
}

fn quote(column: &str) -> String {
    format!("\"{column}\"")
}

/// Runs the tests in a session where `model` resolves to `staged` and every other name
/// resolves as in `ctx`.
pub async fn run(
    ctx: &SessionContext,
    model: &ModelName,
    staged: Arc<dyn TableProvider>,
    tests: &[DataTest],
) -> DfResult<Vec<TestOutcome>> {
    let shadowed = shadow(ctx, model, staged)?;
    let without_nulls = columns_without_nulls(&shadowed, model, tests).await;
    // A few at a time: each test is a small query with serial planning and file opening.
    let mut checks = Vec::with_capacity(tests.len());
    for test in tests {
        let passed = test
            .null_check
            .as_ref()
            .is_some_and(|column| without_nulls.contains(column));
        checks.push(check(&shadowed, test, passed));
    }
    Ok(futures::stream::iter(checks)
        .buffered(CONCURRENT_TESTS)
        .collect()
        .await)
}

/// `test`'s outcome; `passed` when the shared null count already showed it passes.
async fn check(ctx: &SessionContext, test: &DataTest, passed: bool) -> TestOutcome {
    if !passed {
        return run_one(ctx, test).await;
    }
    TestOutcome {
        name: test.name.clone(),
        query: test.query.clone(),
        status: TestStatus::Pass,
        failing_rows: 0,
        detail: String::new(),
    }
}

const CONCURRENT_TESTS: usize = 4;

/// The not-null tests' columns that hold no null, counted in one scan. Empty when that scan
/// fails (a missing column, say): each test then runs alone and reports its own error.
async fn columns_without_nulls(
    ctx: &SessionContext,
    model: &ModelName,
    tests: &[DataTest],
) -> HashSet<String> {
    let columns: Vec<&String> = tests.iter().filter_map(|t| t.null_check.as_ref()).collect();
    if columns.is_empty() {
        return HashSet::new();
    }
    let counts = columns
        .iter()
        .map(|c| format!("count(*) FILTER (WHERE {c} IS NULL)"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!("SELECT {counts} FROM {model}");
    let batches = match ctx.sql(&query).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    let Ok([batch]) = batches.as_deref() else {
        return HashSet::new();
    };
    columns
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .is_some_and(|nulls| nulls.len() == 1 && nulls.value(0) == 0)
        })
        .map(|(_, column)| column.clone())
        .collect()
}

async fn run_one(ctx: &SessionContext, test: &DataTest) -> TestOutcome {
    let outcome = |status, failing_rows, detail| TestOutcome {
        name: test.name.clone(),
        query: test.query.clone(),
        status,
        failing_rows,
        detail,
    };
    let result: DfResult<(u64, String)> = async {
        let df = ctx.sql(&test.query).await?;
        let failing = df.clone().count().await? as u64;
        let sample = if failing > 0 {
            pretty_format_batches(&df.limit(0, Some(5))?.collect().await?)?.to_string()
        } else {
            String::new()
        };
        Ok((failing, sample))
    }
    .await;
    match result {
        Ok((0, _)) => outcome(TestStatus::Pass, 0, String::new()),
        Ok((failing, sample)) => outcome(TestStatus::Fail, failing, sample),
        Err(e) => outcome(TestStatus::Error, 0, e.to_string()),
    }
}

fn shadow(
    ctx: &SessionContext,
    model: &ModelName,
    staged: Arc<dyn TableProvider>,
) -> DfResult<SessionContext> {
    let state = ctx.state();
    let original = state
        .catalog_list()
        .catalog(CATALOG)
        .expect("the cdphub catalog is always registered");
    let catalog = Arc::new(MemoryCatalogProvider::new());
    for schema_name in original.schema_names() {
        let Some(schema) = original.schema(&schema_name) else {
            continue;
        };
        let schema: Arc<dyn SchemaProvider> = if schema_name == model.schema {
            Arc::new(ShadowSchema {
                inner: schema,
                table: model.table.clone(),
                provider: staged.clone(),
            })
        } else {
            schema
        };
        catalog.register_schema(&schema_name, schema)?;
    }
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    catalogs.register_catalog(CATALOG.to_string(), catalog);
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(catalogs)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// A schema where one table name points at another provider.
#[derive(Debug)]
struct ShadowSchema {
    inner: Arc<dyn SchemaProvider>,
    table: String,
    provider: Arc<dyn TableProvider>,
}

#[async_trait]
impl SchemaProvider for ShadowSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        if !names.contains(&self.table) {
            names.push(self.table.clone());
        }
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if name == self.table {
            return Ok(Some(self.provider.clone()));
        }
        self.inner.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        name == self.table || self.inner.table_exist(name)
    }
}
