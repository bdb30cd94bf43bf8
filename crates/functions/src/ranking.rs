//! `id_priority(id_type)` and `source_priority(source)`: the configured orders as numbers,
//! so models can sort by them (0 is strongest; unlisted values rank last); and
//! `identifier_key(id_type, id_value)`, which sorts identifiers in that order as text.

use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int32Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RankFunction {
    name: &'static str,
    order: Vec<String>,
    signature: Signature,
}

impl RankFunction {
    /// `id_priority`: the `[identity] priority` order of identifier types.
    pub fn id_priority(order: Vec<String>) -> ScalarUDF {
        Self::udf("id_priority", order)
    }

    /// `source_priority`: the `[identity] source-priority` order of sources.
    pub fn source_priority(order: Vec<String>) -> ScalarUDF {
        Self::udf("source_priority", order)
    }

    fn udf(name: &'static str, order: Vec<String>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            name,
            order,
            signature: Signature::one_of(vec![TypeSignature::String(1)], Volatility::Immutable),
        })
    }
}

/// The position of `value` in `order`; unlisted values rank after every listed one.
fn rank(order: &[String], value: &str) -> i32 {
    order.iter().position(|v| v == value).unwrap_or(order.len()) as i32
}

impl ScalarUDFImpl for RankFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let values = values
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("cast to Utf8");
        let mut out = Int32Builder::with_capacity(values.len());
        for row in 0..values.len() {
            if values.is_null(row) {
                out.append_null();
            } else {
                out.append_value(rank(&self.order, values.value(row)));
            }
        }
        crate::shaped_like(&args.args, Arc::new(out.finish()))
    }
}

/// `identifier_key(id_type, id_value)`: text that sorts identifiers strongest first, as
/// `[identity] priority`, then type, then value: `NNN␟type␟value`, with NNN the priority
/// padded to three digits and ␟ the unit separator `chr(31)`, which sorts below every
/// printable character. NULL when the value is NULL. `least()` of the keys of a record's
/// identifiers (or `min()` over rows) picks the strongest without sorting anything.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IdentifierKey {
    order: Vec<String>,
    signature: Signature,
}

/// The separator inside an [`IdentifierKey`].
pub const KEY_SEPARATOR: char = '\u{1f}';

impl IdentifierKey {
    pub fn udf(order: Vec<String>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            order,
            signature: Signature::one_of(vec![TypeSignature::String(2)], Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for IdentifierKey {
    fn name(&self) -> &str {
        "identifier_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let types = cast(&arrays[0], &DataType::Utf8)?;
        let values = cast(&arrays[1], &DataType::Utf8)?;
        let types = types.as_string::<i32>();
        let values = values.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(values.len(), values.value_data().len() * 2);
        let mut key = String::new();
        for row in 0..values.len() {
            if types.is_null(row) || values.is_null(row) {
                out.append_null();
                continue;
            }
            let id_type = types.value(row);
            key.clear();
            write!(
                key,
                "{:03}{KEY_SEPARATOR}{id_type}{KEY_SEPARATOR}{}",
                rank(&self.order, id_type),
                values.value(row)
            )
            .expect("writing to a String");
            out.append_value(&key);
        }
        crate::shaped_like(&args.args, Arc::new(out.finish()))
    }
}
