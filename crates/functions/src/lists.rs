//! `list_field(list_of_structs, 'field')`: one field of every struct in a list, as a list.
//!
//! It lets a model sort a journey's steps once and keep several lists in the same order:
//!
//! ```sql
//! WITH s AS (SELECT array_sort(array_agg(named_struct('at', occurred_at, 'channel', channel))) AS steps ...)
//! SELECT list_field(steps, 'at') AS touched_at, list_field(steps, 'channel') AS channels FROM s
//! ```
//!
//! One ordered aggregate per list (`array_agg(x ORDER BY ...)`) is an order of magnitude
//! slower in DataFusion 55. The result shares the struct list's offsets and the field's
//! values: no row is copied.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, GenericListArray, OffsetSizeTrait, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

const USAGE: &str = "list_field(<list of structs>, '<field name>')";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ListField {
    signature: Signature,
}

impl ListField {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

/// The struct fields of a `List<Struct>` or `LargeList<Struct>` type.
fn struct_item(list: &DataType) -> Option<(&FieldRef, &arrow::datatypes::Fields)> {
    match list {
        DataType::List(item) | DataType::LargeList(item) => match item.data_type() {
            DataType::Struct(fields) => Some((item, fields)),
            _ => None,
        },
        _ => None,
    }
}

fn field_name(argument: Option<&ScalarValue>) -> Result<String> {
    match argument {
        Some(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name))) => Ok(name.clone()),
        _ => plan_err!("list_field: the field name must be a quoted string, as in {USAGE}"),
    }
}

impl ScalarUDFImpl for ListField {
    fn name(&self) -> &str {
        "list_field"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("list_field: the result type depends on the field name; use {USAGE}")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let list = args.arg_fields[0].data_type();
        let Some((item, fields)) = struct_item(list) else {
            return plan_err!(
                "list_field: the first argument must be a list of structs, got {list}; {USAGE}"
            );
        };
        let name = field_name(args.scalar_arguments[1])?;
        let Some((_, field)) = fields.find(&name) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
            return plan_err!(
                "list_field: the structs have no field `{name}`; they have {}",
                names.join(", ")
            );
        };
        // The items may be null where the struct is, whatever the field says.
        let item = Arc::new(
            Field::new(item.name(), field.data_type().clone(), true)
                .with_metadata(field.metadata().clone()),
        );
        let data_type = match list {
            DataType::LargeList(_) => DataType::LargeList(item),
            _ => DataType::List(item),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = match &args.args[1] {
            ColumnarValue::Scalar(value) => field_name(Some(value))?,
            ColumnarValue::Array(_) => {
                return exec_err!("list_field: the field name must be a constant, as in {USAGE}");
            }
        };
        let lists = args.args[0].to_array(args.number_rows)?;
        let item = match args.return_field.data_type() {
            DataType::List(item) | DataType::LargeList(item) => item.clone(),
            other => return exec_err!("list_field: unexpected result type {other}"),
        };
        let result: ArrayRef = match lists.data_type() {
            DataType::List(_) => Arc::new(pick::<i32>(lists.as_ref(), &name, item)?),
            DataType::LargeList(_) => Arc::new(pick::<i64>(lists.as_ref(), &name, item)?),
            other => return exec_err!("list_field: expected a list of structs, got {other}"),
        };
        crate::shaped_like(&args.args, result)
    }
}

fn pick<O: OffsetSizeTrait>(
    lists: &dyn Array,
    name: &str,
    item: FieldRef,
) -> Result<GenericListArray<O>> {
    let lists = lists
        .as_any()
        .downcast_ref::<GenericListArray<O>>()
        .expect("checked list type");
    let Some(structs) = lists.values().as_any().downcast_ref::<StructArray>() else {
        return exec_err!("list_field: the list items are not structs");
    };
    let Some(values) = structs.column_by_name(name) else {
        return exec_err!("list_field: the structs have no field `{name}`");
    };
    // A null struct makes a null item, whatever its field holds.
    let values = match structs.nulls() {
        Some(nulls) => {
            let combined = arrow::buffer::NullBuffer::union(Some(nulls), values.nulls());
            arrow::array::make_array(
                values
                    .to_data()
                    .into_builder()
                    .nulls(combined)
                    .build()
                    .map_err(|e| {
                        datafusion::common::DataFusionError::ArrowError(Box::new(e), None)
                    })?,
            )
        }
        None => values.clone(),
    };
    Ok(GenericListArray::<O>::try_new(
        item,
        lists.offsets().clone(),
        values,
        lists.nulls().cloned(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn run(sql: &str) -> Result<String> {
        let ctx = SessionContext::new();
        ctx.register_udf(ListField::udf());
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
    }

    #[tokio::test]
    async fn picks_each_field_in_the_sorted_order() {
        let out = run(
            "WITH s AS (SELECT k, array_sort(array_agg(named_struct('at', at, 'channel', c))) AS steps \
             FROM (VALUES (1, 30, 'email'), (1, 10, 'direct'), (1, 20, 'paid_search'), (2, 5, 'display')) AS t(k, at, c) \
             GROUP BY k) \
             SELECT k, list_field(steps, 'at') AS at, list_field(steps, 'channel') AS channels FROM s ORDER BY k",
        )
        .await
        .unwrap();
        assert!(
            out.contains("| 1 | [10, 20, 30] | [direct, paid_search, email] |"),
            "{out}"
        );
        assert!(
            out.contains("| 2 | [5]          | [display]                    |"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn null_lists_stay_null_and_bad_calls_say_why() {
        let out = run(
            "SELECT list_field(CASE WHEN false THEN [named_struct('a', 1)] END, 'a') IS NULL AS n",
        )
        .await
        .unwrap();
        assert!(out.contains("| true |"), "{out}");
        let err = run("SELECT list_field([named_struct('a', 1)], 'b')")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no field `b`") && err.contains("they have a"),
            "{err}"
        );
        let err = run("SELECT list_field([1, 2], 'a')")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a list of structs"), "{err}");
    }
}
