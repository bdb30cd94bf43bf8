//! A role's view of the catalog. Every query of a Flight SQL client is planned against it:
//!
//! - a schema lists only the tables the role may read, and resolving any other table fails with
//!   PERMISSION_DENIED naming it, so `information_schema`, GetTables and every query agree;
//! - each readable table is wrapped in a [`GuardedTable`] that, for roles without `pii`, replaces
//!   the declared PII columns by a keyed pseudonym *inside the scan*. Whatever sits above the scan
//!   (joins, CTEs, subqueries, views, functions, prepared statements) only ever sees masked values,
//!   and filters on a masked column are never pushed into the storage scan, where they would be
//!   evaluated on the clear values;
//! - the catalog is read-only, except the session's own `public` schema, which holds the temporary
//!   views the session creates (planned against this same view, hence masked too).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, LargeStringArray, StringArray, StringViewArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider, Session, TableProvider,
};
use datafusion::common::{Constraints, Statistics, plan_err};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TableProviderFilterPushDown, Volatility,
};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use sha2::{Digest, Sha256};

use crate::access::{AccessPolicy, Role};
use crate::error::ServeError;

/// The session's scratch schema: temporary views live here, and nothing else.
pub const SCRATCH_SCHEMA: &str = "public";

/// Builds the catalog list a session of `role` plans against.
pub fn secured_catalogs(
    inner: Arc<dyn CatalogProvider>,
    catalog_name: &str,
    role: Arc<Role>,
    policy: Arc<AccessPolicy>,
    scratch: Arc<MemorySchemaProvider>,
    mask: Arc<ScalarUDF>,
) -> Arc<dyn CatalogProviderList> {
    let list = MemoryCatalogProviderList::new();
    list.register_catalog(
        catalog_name.to_string(),
        Arc::new(SecuredCatalog {
            inner,
            guard: Arc::new(Guard { role, policy, mask }),
            scratch,
        }),
    );
    Arc::new(list)
}

#[derive(Debug)]
struct Guard {
    role: Arc<Role>,
    policy: Arc<AccessPolicy>,
    mask: Arc<ScalarUDF>,
}

#[derive(Debug)]
pub struct SecuredCatalog {
    inner: Arc<dyn CatalogProvider>,
    guard: Arc<Guard>,
    scratch: Arc<MemorySchemaProvider>,
}

impl CatalogProvider for SecuredCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .schema_names()
            .into_iter()
            .filter(|s| s != SCRATCH_SCHEMA && self.guard.role.can_see_schema(s))
            .collect();
        names.push(SCRATCH_SCHEMA.to_string());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == SCRATCH_SCHEMA {
            return Some(self.scratch.clone() as Arc<dyn SchemaProvider>);
        }
        // Every schema resolves, visible or not, so that a query on a table the role lacks fails
        // with PERMISSION_DENIED naming the table instead of "schema not found".
        let inner = self.inner.schema(name)?;
        Some(Arc::new(SecuredSchema {
            name: name.to_string(),
            inner,
            guard: self.guard.clone(),
        }))
    }
}

#[derive(Debug)]
struct SecuredSchema {
    name: String,
    inner: Arc<dyn SchemaProvider>,
    guard: Arc<Guard>,
}

#[async_trait]
impl SchemaProvider for SecuredSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .table_names()
            .into_iter()
            .filter(|t| self.guard.role.can_read(&self.name, t))
            .collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !self.guard.role.can_read(&self.name, name) {
            return Err(ServeError::PermissionDenied {
                role: self.guard.role.name.clone(),
                table: format!("{}.{name}", self.name),
            }
            .into());
        }
        let Some(inner) = self.inner.table(name).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(GuardedTable::new(
            &self.name,
            name,
            inner,
            &self.guard,
        ))))
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        plan_err!(
            "schema {} is read-only over Flight SQL: cannot create {}.{name}; temporary views go in the session's own schema (CREATE VIEW {name} AS ...)",
            self.name,
            self.name
        )
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        plan_err!(
            "schema {} is read-only over Flight SQL: cannot drop {}.{name}",
            self.name,
            self.name
        )
    }

    fn table_exist(&self, name: &str) -> bool {
        self.guard.role.can_read(&self.name, name) && self.inner.table_exist(name)
    }
}

/// A readable table, with its PII columns masked for roles without `pii`.
#[derive(Debug)]
pub struct GuardedTable {
    pub schema_name: String,
    pub table_name: String,
    inner: Arc<dyn TableProvider>,
    /// Per column of the table schema: masked or not.
    masked: Vec<bool>,
    schema: SchemaRef,
    mask: Arc<ScalarUDF>,
}

impl GuardedTable {
    fn new(
        schema_name: &str,
        table_name: &str,
        inner: Arc<dyn TableProvider>,
        guard: &Guard,
    ) -> Self {
        let inner_schema = inner.schema();
        let masked: Vec<bool> = inner_schema
            .fields()
            .iter()
            .map(|f| !guard.role.pii && guard.policy.is_pii(schema_name, table_name, f.name()))
            .collect();
        let schema = if masked.iter().any(|m| *m) {
            let fields: Vec<Field> = inner_schema
                .fields()
                .iter()
                .zip(&masked)
                .map(|(f, m)| {
                    if *m {
                        f.as_ref().clone().with_nullable(true)
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect();
            Arc::new(Schema::new_with_metadata(
                fields,
                inner_schema.metadata().clone(),
            ))
        } else {
            inner_schema
        };
        Self {
            schema_name: schema_name.to_string(),
            table_name: table_name.to_string(),
            inner,
            masked,
            schema,
            mask: guard.mask.clone(),
        }
    }

    pub fn masked_columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .zip(&self.masked)
            .filter(|(_, m)| **m)
            .map(|(f, _)| f.name().clone())
            .collect()
    }

    fn masked_names(&self) -> HashSet<&str> {
        self.schema
            .fields()
            .iter()
            .zip(&self.masked)
            .filter(|(_, m)| **m)
            .map(|(f, _)| f.name().as_str())
            .collect()
    }

    fn touches_masked(&self, filter: &Expr, masked: &HashSet<&str>) -> bool {
        filter
            .column_refs()
            .iter()
            .any(|c| masked.contains(c.name.as_str()))
    }
}

#[async_trait]
impl TableProvider for GuardedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    /// Never inlined: a view's own plan would bypass this table's masking.
    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let masked = self.masked_names();
        if masked.is_empty() {
            return self.inner.scan(state, projection, filters, limit).await;
        }
        // Defence in depth: DataFusion only hands over the filters `supports_filters_pushdown`
        // accepted, which never touch a masked column.
        let safe: Vec<Expr> = filters
            .iter()
            .filter(|f| !self.touches_masked(f, &masked))
            .cloned()
            .collect();
        let plan = self.inner.scan(state, projection, &safe, limit).await?;
        let plan_schema = plan.schema();
        if !plan_schema
            .fields()
            .iter()
            .any(|f| masked.contains(f.name().as_str()))
        {
            // No masked column is read (count(*), other columns only).
            return Ok(plan);
        }
        let config = Arc::new(state.config_options().clone());
        let mut exprs = Vec::with_capacity(plan_schema.fields().len());
        for (index, field) in plan_schema.fields().iter().enumerate() {
            let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), index));
            if masked.contains(field.name().as_str()) {
                let return_field = Arc::new(
                    Field::new(field.name(), field.data_type().clone(), true)
                        .with_metadata(field.metadata().clone()),
                );
                exprs.push(ProjectionExpr {
                    expr: Arc::new(ScalarFunctionExpr::new(
                        self.mask.name(),
                        self.mask.clone(),
                        vec![column],
                        return_field,
                        config.clone(),
                    )),
                    alias: field.name().clone(),
                });
            } else {
                exprs.push(ProjectionExpr {
                    expr: column,
                    alias: field.name().clone(),
                });
            }
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let masked = self.masked_names();
        let mut result = vec![TableProviderFilterPushDown::Unsupported; filters.len()];
        let (positions, safe): (Vec<usize>, Vec<&Expr>) = filters
            .iter()
            .enumerate()
            .filter(|(_, f)| !self.touches_masked(f, &masked))
            .map(|(i, f)| (i, *f))
            .unzip();
        if !safe.is_empty() {
            let answers = self.inner.supports_filters_pushdown(&safe)?;
            for (position, answer) in positions.into_iter().zip(answers) {
                result[position] = answer;
            }
        }
        Ok(result)
    }

    fn statistics(&self) -> Option<Statistics> {
        if self.masked.iter().any(|m| *m) {
            None
        } else {
            self.inner.statistics()
        }
    }
}

/// `pii_mask(value)`: text becomes a keyed pseudonym (`pii:` and 12 hex digits: the same value
/// gives the same pseudonym for the server's lifetime, so counts and joins still work), every
/// other type becomes NULL. The key never leaves the server.
#[derive(Clone)]
pub struct MaskFunction {
    key: [u8; 32],
    signature: Signature,
}

impl MaskFunction {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    pub fn udf(key: [u8; 32]) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self::new(key)))
    }

    pub fn pseudonym(&self, value: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(value.as_bytes())
            .finalize();
        let mut out = String::with_capacity(16);
        out.push_str("pii:");
        for byte in &digest[..6] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    fn mask_array(&self, array: &ArrayRef) -> DfResult<ArrayRef> {
        let masked: ArrayRef = match array.data_type() {
            DataType::Utf8 => {
                let strings = array.as_any().downcast_ref::<StringArray>().expect("utf8");
                Arc::new(
                    strings
                        .iter()
                        .map(|v| v.map(|v| self.pseudonym(v)))
                        .collect::<StringArray>(),
                )
            }
            DataType::LargeUtf8 => {
                let strings = array
                    .as_any()
                    .downcast_ref::<LargeStringArray>()
                    .expect("large utf8");
                Arc::new(
                    strings
                        .iter()
                        .map(|v| v.map(|v| self.pseudonym(v)))
                        .collect::<LargeStringArray>(),
                )
            }
            DataType::Utf8View => {
                let strings = array
                    .as_any()
                    .downcast_ref::<StringViewArray>()
                    .expect("utf8 view");
                Arc::new(
                    strings
                        .iter()
                        .map(|v| v.map(|v| self.pseudonym(v)))
                        .collect::<StringViewArray>(),
                )
            }
            other => new_null_array(other, array.len()),
        };
        Ok(masked)
    }
}

impl fmt::Debug for MaskFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskFunction { key: <hidden> }")
    }
}

impl PartialEq for MaskFunction {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for MaskFunction {}

impl Hash for MaskFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "pii_mask".hash(state);
    }
}

impl ScalarUDFImpl for MaskFunction {
    fn name(&self) -> &str {
        "pii_mask"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        arg_types
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Plan("pii_mask takes one argument".into()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return plan_err!("pii_mask takes one argument");
        };
        let array = value.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(self.mask_array(&array)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_value() {
        let a = MaskFunction::new([1; 32]);
        let b = MaskFunction::new([2; 32]);
        let p = a.pseudonym("ana@example.com");
        assert_eq!(p, a.pseudonym("ana@example.com"));
        assert_ne!(p, b.pseudonym("ana@example.com"));
        assert_ne!(p, a.pseudonym("bob@example.com"));
        assert!(p.starts_with("pii:") && p.len() == 16, "{p}");
        assert!(!p.contains('@'));
    }

    #[test]
    fn non_text_becomes_null_and_nulls_stay_null() {
        let mask = MaskFunction::new([0; 32]);
        let dates: ArrayRef = Arc::new(datafusion::arrow::array::Date32Array::from(vec![
            Some(1),
            None,
        ]));
        let out = mask.mask_array(&dates).unwrap();
        assert_eq!(out.null_count(), 2);
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None]));
        let out = mask.mask_array(&text).unwrap();
        assert_eq!(out.null_count(), 1);
    }
}
