//! `id_priority(id_type)` and `source_priority(source)`: the configured orders as numbers,
//! so models can sort by them (0 is strongest; unlisted values rank last).

use std::sync::Arc;

use arrow::array::{Array, Int32Builder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
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

    fn rank(&self, value: &str) -> i32 {
        self.order
            .iter()
            .position(|v| v == value)
            .unwrap_or(self.order.len()) as i32
    }
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
                out.append_value(self.rank(values.value(row)));
            }
        }
        let array: arrow::array::ArrayRef = Arc::new(out.finish());
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(array),
        })
    }
}
