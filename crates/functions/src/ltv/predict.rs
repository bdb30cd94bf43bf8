//! Predictions from fitted parameters: P(alive), expected purchases, expected spend and
//! predicted CLV, row by row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Float64Builder};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use cdphub_ltv::{
    BgNbdParams, CustomerSummary, Discounting, GammaGammaParams, LtvError, SpendSummary,
    predicted_clv,
};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which prediction a scalar function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PredictKind {
    PAlive,
    ExpectedPurchases,
    ExpectedSpend,
    Clv,
}

/// One argument of a prediction function.
#[derive(Debug, Clone, Copy)]
enum Arg {
    BgNbd,
    GammaGamma,
    Number(&'static str),
}

const BGNBD_FIELDS: [&str; 4] = ["r", "alpha", "a", "b"];
const GAMMA_GAMMA_FIELDS: [&str; 3] = ["p", "q", "v"];

impl Arg {
    fn name(self) -> &'static str {
        match self {
            Arg::BgNbd => "bgnbd",
            Arg::GammaGamma => "gamma_gamma",
            Arg::Number(name) => name,
        }
    }

    /// The struct fields a parameter argument needs (none for a number).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Arg::BgNbd => &BGNBD_FIELDS,
            Arg::GammaGamma => &GAMMA_GAMMA_FIELDS,
            Arg::Number(_) => &[],
        }
    }
}

use Arg::{BgNbd, GammaGamma, Number};

impl PredictKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::PAlive => "bgnbd_p_alive",
            Self::ExpectedPurchases => "bgnbd_expected_purchases",
            Self::ExpectedSpend => "gamma_gamma_expected_spend",
            Self::Clv => "predicted_clv",
        }
    }

    /// Every argument, optional ones last.
    fn args(self) -> &'static [Arg] {
        const CUSTOMER: [Arg; 3] = [Number("frequency"), Number("recency"), Number("t")];
        match self {
            Self::PAlive => &[BgNbd, CUSTOMER[0], CUSTOMER[1], CUSTOMER[2]],
            Self::ExpectedPurchases => &[
                BgNbd,
                Number("horizon"),
                CUSTOMER[0],
                CUSTOMER[1],
                CUSTOMER[2],
            ],
            Self::ExpectedSpend => &[GammaGamma, Number("frequency"), Number("monetary_value")],
            Self::Clv => &[
                BgNbd,
                GammaGamma,
                Number("horizon"),
                CUSTOMER[0],
                CUSTOMER[1],
                CUSTOMER[2],
                Number("monetary_value"),
                Number("discount_rate"),
                Number("period_length"),
            ],
        }
    }

    /// The numbers of arguments accepted.
    fn arities(self) -> &'static [usize] {
        match self {
            Self::PAlive => &[4],
            Self::ExpectedPurchases => &[2, 5],
            Self::ExpectedSpend => &[3],
            Self::Clv => &[7, 9],
        }
    }

    fn usage(self) -> String {
        let args = self.args();
        let shortest = self.arities()[0];
        let mut text = format!(
            "{}({}",
            self.name(),
            args[..shortest]
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if args.len() > shortest {
            let rest: Vec<&str> = args[shortest..].iter().map(|a| a.name()).collect();
            text.push_str(&format!(" [, {}]", rest.join(", ")));
        }
        text.push(')');
        text
    }

    /// The prediction for one row; `v` holds the arguments with parameter structs spread
    /// into their fields.
    fn compute(self, v: &[f64]) -> std::result::Result<f64, LtvError> {
        let customer = |at: usize| CustomerSummary {
            frequency: v[at],
            recency: v[at + 1],
            age: v[at + 2],
        };
        let bgnbd = |at: usize| BgNbdParams::new(v[at], v[at + 1], v[at + 2], v[at + 3]);
        let gamma_gamma = |at: usize| GammaGammaParams::new(v[at], v[at + 1], v[at + 2]);
        match self {
            Self::PAlive => bgnbd(0)?.p_alive(&customer(4)),
            Self::ExpectedPurchases if v.len() == 5 => bgnbd(0)?.expected_purchases(v[4]),
            Self::ExpectedPurchases => bgnbd(0)?.conditional_expected_purchases(v[4], &customer(5)),
            Self::ExpectedSpend => {
                gamma_gamma(0)?.conditional_expected_average_spend(&SpendSummary {
                    frequency: v[3],
                    monetary_value: v[4],
                })
            }
            Self::Clv => {
                let discounting = (v.len() == 14).then(|| Discounting {
                    rate_per_period: v[12],
                    period_length: v[13],
                });
                predicted_clv(
                    v[7],
                    &bgnbd(0)?,
                    &gamma_gamma(4)?,
                    &customer(8),
                    v[11],
                    discounting.as_ref(),
                )
            }
        }
    }
}

/// A number argument (or NULL) is read as Float64; anything else is a planning error.
pub(super) fn check_number(
    function: &str,
    usage: &str,
    index: usize,
    name: &str,
    data_type: &DataType,
) -> Result<DataType> {
    if data_type.is_numeric() || data_type.is_null() {
        Ok(DataType::Float64)
    } else {
        plan_err!(
            "{function}: argument {} ({name}) must be a number, got {data_type}; usage: {usage}",
            index + 1
        )
    }
}

fn check_params(function: &str, index: usize, arg: Arg, data_type: &DataType) -> Result<DataType> {
    let fields = arg.fields();
    let has = |name: &str| match data_type {
        DataType::Struct(struct_fields) => struct_fields
            .find(name)
            .is_some_and(|(_, f)| f.data_type().is_numeric() || f.data_type().is_null()),
        _ => false,
    };
    if data_type.is_null() || fields.iter().all(|f| has(f)) {
        return Ok(data_type.clone());
    }
    let example = match arg {
        BgNbd => {
            "bgnbd_fit(frequency, recency, t) or named_struct('r', 0.24, 'alpha', 4.41, 'a', 0.79, 'b', 2.43)"
        }
        _ => {
            "gamma_gamma_fit(frequency, monetary_value) or named_struct('p', 6.25, 'q', 3.74, 'v', 15.45)"
        }
    };
    plan_err!(
        "{function}: argument {} ({}) must be the fitted parameters, a struct with numeric fields {}, such as the result of {example}; got {data_type}",
        index + 1,
        arg.name(),
        fields.join(", ")
    )
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PredictFunction {
    kind: PredictKind,
    signature: Signature,
}

/// The scalar function making `kind` of prediction.
pub fn predict_function(kind: PredictKind) -> ScalarUDF {
    ScalarUDF::new_from_impl(PredictFunction {
        kind,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// One Float64 input column, with the nulls of the struct it came from.
struct Input {
    values: Float64Array,
    parent_nulls: Option<NullBuffer>,
}

impl Input {
    fn is_null(&self, row: usize) -> bool {
        self.values.is_null(row) || self.parent_nulls.as_ref().is_some_and(|n| n.is_null(row))
    }
}

fn float_column(array: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

impl ScalarUDFImpl for PredictFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (kind, name) = (self.kind, self.kind.name());
        if !kind.arities().contains(&arg_types.len()) {
            let counts: Vec<String> = kind.arities().iter().map(ToString::to_string).collect();
            return plan_err!(
                "{name} takes {} arguments, got {}; usage: {}",
                counts.join(" or "),
                arg_types.len(),
                kind.usage()
            );
        }
        arg_types
            .iter()
            .zip(kind.args())
            .enumerate()
            .map(|(i, (data_type, arg))| match arg {
                Number(arg_name) => check_number(name, &kind.usage(), i, arg_name, data_type),
                params => check_params(name, i, *params, data_type),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut inputs: Vec<Input> = Vec::new();
        for (value, arg) in args.args.iter().zip(self.kind.args()) {
            let array = value.to_array(rows)?;
            if matches!(arg, Number(_)) {
                inputs.push(Input {
                    values: float_column(&array)?,
                    parent_nulls: None,
                });
                continue;
            }
            for field in arg.fields() {
                let input = match array.as_struct_opt() {
                    Some(params) => Input {
                        values: float_column(
                            params
                                .column_by_name(field)
                                .expect("checked by coerce_types"),
                        )?,
                        parent_nulls: params.nulls().cloned(),
                    },
                    // An untyped NULL in place of the parameters.
                    None => Input {
                        values: Float64Array::new_null(rows),
                        parent_nulls: None,
                    },
                };
                inputs.push(input);
            }
        }
        let mut out = Float64Builder::with_capacity(rows);
        let mut values = vec![0.0; inputs.len()];
        for row in 0..rows {
            if inputs.iter().any(|i| i.is_null(row)) {
                out.append_null();
                continue;
            }
            for (slot, input) in values.iter_mut().zip(&inputs) {
                *slot = input.values.value(row);
            }
            match self.kind.compute(&values) {
                Ok(value) => out.append_value(value),
                Err(error) => return exec_err!("{}: {error}", self.kind.name()),
            }
        }
        crate::shaped_like(&args.args, Arc::new(out.finish()))
    }
}
