//! `bgnbd_fit` and `gamma_gamma_fit`: maximum-likelihood fits as SQL aggregates.
//!
//! The accumulator keeps one weight per distinct input tuple (customers share histories a
//! lot: every one-time buyer of a given day has the same one), so its state stays small and
//! partial states merge by adding weights. Tuples are sorted before fitting, so the result
//! does not depend on how the rows were partitioned.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StructArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use cdphub_ltv::{
    CustomerSummary, FitOptions, LtvError, Model, SpendSummary, fit_bgnbd_weighted,
    fit_gamma_gamma_weighted,
};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::predict::check_number;

/// Which model an aggregate fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FitKind {
    BgNbd,
    GammaGamma,
}

impl FitKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::BgNbd => "bgnbd_fit",
            Self::GammaGamma => "gamma_gamma_fit",
        }
    }

    /// The per-customer inputs, before the optional penalizer.
    fn inputs(self) -> &'static [&'static str] {
        match self {
            Self::BgNbd => &["frequency", "recency", "t"],
            Self::GammaGamma => &["frequency", "monetary_value"],
        }
    }

    fn usage(self) -> String {
        format!(
            "{}({} [, penalizer])",
            self.name(),
            self.inputs().join(", ")
        )
    }

    /// The fields of the result struct.
    pub fn output_fields(self) -> Fields {
        let float = |name: &str| Field::new(name, DataType::Float64, true);
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        let mut fields: Vec<Field> = match self {
            Self::BgNbd => ["r", "alpha", "a", "b"].map(float).to_vec(),
            Self::GammaGamma => ["p", "q", "v"].map(float).to_vec(),
        };
        fields.push(float("log_likelihood"));
        fields.push(int("customers"));
        fields.push(int(match self {
            Self::BgNbd => "distinct_histories",
            Self::GammaGamma => "one_time_buyers_skipped",
        }));
        fields.push(int("iterations"));
        fields.push(Field::new("converged", DataType::Boolean, true));
        fields.into()
    }

    fn model(self) -> Model {
        match self {
            Self::BgNbd => Model::BgNbd,
            Self::GammaGamma => Model::GammaGamma,
        }
    }

    /// Checks one input tuple by the model's definitions.
    fn validate(self, values: &[f64]) -> std::result::Result<(), LtvError> {
        match self {
            Self::BgNbd => summary(values).validate(self.model(), None),
            Self::GammaGamma => spend(values).validate(self.model(), None),
        }
    }
}

fn summary(values: &[f64]) -> CustomerSummary {
    CustomerSummary {
        frequency: values[0],
        recency: values[1],
        age: values[2],
    }
}

fn spend(values: &[f64]) -> SpendSummary {
    SpendSummary {
        frequency: values[0],
        monetary_value: values[1],
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FitFunction {
    kind: FitKind,
    signature: Signature,
}

/// The aggregate fitting `kind`.
pub fn fit_function(kind: FitKind) -> AggregateUDF {
    AggregateUDF::new_from_impl(FitFunction {
        kind,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

impl AggregateUDFImpl for FitFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let inputs = self.kind.inputs();
        if arg_types.len() != inputs.len() && arg_types.len() != inputs.len() + 1 {
            return plan_err!(
                "{} takes {} or {} arguments, got {}",
                self.kind.usage(),
                inputs.len(),
                inputs.len() + 1,
                arg_types.len()
            );
        }
        let names = inputs.iter().copied().chain(["penalizer"]);
        arg_types
            .iter()
            .zip(names)
            .enumerate()
            .map(|(i, (data_type, name))| {
                check_number(self.kind.name(), &self.kind.usage(), i, name, data_type)
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(self.kind.output_fields()))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let width = self.kind.inputs().len();
        let penalizer = match args.exprs.get(width) {
            None => 0.0,
            Some(expr) => match expr.downcast_ref::<Literal>().map(Literal::value) {
                Some(ScalarValue::Float64(Some(value))) => *value,
                _ => {
                    return plan_err!(
                        "{}: the penalizer must be a constant number such as 0.001, the same for every row",
                        self.kind.usage()
                    );
                }
            },
        };
        Ok(Box::new(FitAccumulator {
            kind: self.kind,
            width,
            penalizer,
            groups: HashMap::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
                true,
            ))
        };
        Ok(self
            .kind
            .inputs()
            .iter()
            .chain(&["weight"])
            .map(|name| list(name))
            .collect())
    }
}

/// Input tuple as bit patterns (at most three values; unused ones are 0).
type Key = [u64; 3];

#[derive(Debug)]
struct FitAccumulator {
    kind: FitKind,
    width: usize,
    penalizer: f64,
    /// Number of customers with each distinct input tuple.
    groups: HashMap<Key, f64>,
}

impl FitAccumulator {
    fn key(values: &[f64]) -> Key {
        let mut key = [0; 3];
        for (slot, value) in key.iter_mut().zip(values) {
            // + 0.0 folds -0.0 into 0.0.
            *slot = (value + 0.0).to_bits();
        }
        key
    }

    /// Adds rows of `columns` (one per input), each with its weight (1 for raw rows).
    fn add(&mut self, columns: &[ArrayRef], weights: Option<&Float64Array>) -> Result<()> {
        let columns = columns
            .iter()
            .map(|c| cast(c, &DataType::Float64))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let columns: Vec<&Float64Array> = columns
            .iter()
            .map(|c| c.as_primitive::<Float64Type>())
            .collect();
        let mut values = [0.0; 3];
        for row in 0..columns[0].len() {
            if columns.iter().any(|c| c.is_null(row)) {
                continue;
            }
            for (slot, column) in values.iter_mut().zip(&columns) {
                *slot = column.value(row);
            }
            let values = &values[..self.width];
            let weight = weights.map_or(1.0, |w| w.value(row));
            if weights.is_none()
                && let Err(error) = self.kind.validate(values)
            {
                let row: Vec<String> = self
                    .kind
                    .inputs()
                    .iter()
                    .zip(values)
                    .map(|(name, value)| format!("{name} = {value}"))
                    .collect();
                return exec_err!("{}: {error} (row: {})", self.kind.name(), row.join(", "));
            }
            *self.groups.entry(Self::key(values)).or_default() += weight;
        }
        Ok(())
    }

    fn result(&self, groups: &[(Key, f64)]) -> std::result::Result<ArrayRef, LtvError> {
        let options = FitOptions {
            penalizer: self.penalizer,
            // A fit that stops short is reported (converged = false), not an error: the
            // query still shows the parameters and the log-likelihood it reached.
            require_convergence: false,
            ..FitOptions::default()
        };
        let value = |key: &Key, i: usize| f64::from_bits(key[i]);
        let float = |v: f64| Arc::new(Float64Array::from(vec![v])) as ArrayRef;
        let int = |v: f64| Arc::new(Int64Array::from(vec![v.round() as i64])) as ArrayRef;
        let columns: Vec<ArrayRef> = match self.kind {
            FitKind::BgNbd => {
                let rows: Vec<(CustomerSummary, f64)> = groups
                    .iter()
                    .map(|(key, w)| (summary(&[value(key, 0), value(key, 1), value(key, 2)]), *w))
                    .collect();
                let fit = fit_bgnbd_weighted(&rows, &options)?;
                let p = fit.params;
                vec![
                    float(p.r),
                    float(p.alpha),
                    float(p.a),
                    float(p.b),
                    float(fit.log_likelihood),
                    int(fit.customers),
                    int(fit.distinct_histories as f64),
                    int(fit.iterations as f64),
                    Arc::new(BooleanArray::from(vec![fit.converged])),
                ]
            }
            FitKind::GammaGamma => {
                let rows: Vec<(SpendSummary, f64)> = groups
                    .iter()
                    .map(|(key, w)| (spend(&[value(key, 0), value(key, 1)]), *w))
                    .collect();
                let fit = fit_gamma_gamma_weighted(&rows, &options)?;
                let p = fit.params;
                vec![
                    float(p.p),
                    float(p.q),
                    float(p.v),
                    float(fit.log_likelihood),
                    int(fit.customers),
                    int(fit.one_time_buyers_skipped),
                    int(fit.iterations as f64),
                    Arc::new(BooleanArray::from(vec![fit.converged])),
                ]
            }
        };
        Ok(Arc::new(StructArray::new(
            self.kind.output_fields(),
            columns,
            None,
        )))
    }
}

impl Accumulator for FitAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[..self.width], None)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists: Vec<_> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for row in 0..lists[0].len() {
            if lists[0].is_null(row) {
                continue;
            }
            let columns: Vec<ArrayRef> = lists[..self.width].iter().map(|l| l.value(row)).collect();
            let weights = lists[self.width].value(row);
            self.add(&columns, Some(weights.as_primitive::<Float64Type>()))?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut columns = vec![Vec::with_capacity(self.groups.len()); self.width + 1];
        for (key, weight) in &self.groups {
            for (i, column) in columns.iter_mut().take(self.width).enumerate() {
                column.push(f64::from_bits(key[i]));
            }
            columns[self.width].push(*weight);
        }
        Ok(columns
            .into_iter()
            .map(|values| {
                SingleRowListArrayBuilder::new(Arc::new(Float64Array::from(values)))
                    .build_list_scalar()
            })
            .collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let fields = self.kind.output_fields();
        if self.groups.is_empty() {
            // No rows: NULL, as for any SQL aggregate over nothing.
            return Ok(ScalarValue::Struct(Arc::new(StructArray::new_null(
                fields, 1,
            ))));
        }
        let mut groups: Vec<(Key, f64)> = self.groups.iter().map(|(k, w)| (*k, *w)).collect();
        groups.sort_by(|a, b| {
            let (x, y) = (a.0.map(f64::from_bits), b.0.map(f64::from_bits));
            x.iter()
                .zip(&y)
                .map(|(p, q)| p.total_cmp(q))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        match self.result(&groups) {
            Ok(array) => Ok(ScalarValue::Struct(Arc::new(array.as_struct().clone()))),
            Err(error) => exec_err!("{}: {error}", self.kind.name()),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.groups.capacity() * (std::mem::size_of::<(Key, f64)>() + 8)
    }
}
