//! `run_id()` and `run_started_at()`: which run of the model runner is computing a model,
//! for models that keep history. Outside a run both are NULL.

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct RunValue {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl ScalarUDFImpl for RunValue {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// The two functions for a run (`None` outside one). `started_at` is µs since the epoch.
pub fn run_functions(run: Option<(&str, i64)>) -> [ScalarUDF; 2] {
    let id = ScalarValue::Utf8(run.map(|(id, _)| id.to_string()));
    let started = ScalarValue::TimestampMicrosecond(run.map(|(_, at)| at), Some("UTC".into()));
    [("run_id", id), ("run_started_at", started)].map(|(name, value)| constant(name, value))
}

/// A function of no argument that returns `value`, e.g. a config setting for models.
pub(crate) fn constant(name: &'static str, value: ScalarValue) -> ScalarUDF {
    ScalarUDF::new_from_impl(RunValue {
        name,
        value,
        signature: Signature::nullary(Volatility::Stable),
    })
}
