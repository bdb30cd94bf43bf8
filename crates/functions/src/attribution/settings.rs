//! The `[attribution]` settings as SQL, so that models apply the config without templating:
//! `channel_group(kind, source, medium, referrer)`, `is_conversion(status, channel, revenue)`,
//! `attribution_lookback()`, `attribution_max_steps()`, `attribution_collapse_repeats()` and
//! the table function `attribution_models()`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Int32Array, RecordBatch,
    StringArray, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::config::CompiledAttribution;
use crate::run_context::constant;

/// Whether `data_type` can be read as text (NULL literals included).
pub(crate) fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
    )
}

/// Whether `data_type` can be read as a number (NULL literals included).
pub(crate) fn is_number(data_type: &DataType) -> bool {
    data_type.is_numeric() || matches!(data_type, DataType::Null)
}

/// One expected argument: its description, the check of its type, the type it is cast to.
pub(crate) type ExpectedArgument<'a> = (&'a str, fn(&DataType) -> bool, DataType);

/// Coerces arguments to `wanted` after checking them with `accepts`; errors name `function`
/// and `usage`.
pub(crate) fn coerce(
    function: &str,
    usage: &str,
    arg_types: &[DataType],
    expected: &[ExpectedArgument],
) -> Result<Vec<DataType>> {
    if arg_types.len() != expected.len() {
        return plan_err!(
            "{function} takes {} arguments, got {}: {usage}",
            expected.len(),
            arg_types.len()
        );
    }
    arg_types
        .iter()
        .zip(expected)
        .map(|(got, (what, accepts, wanted))| {
            if accepts(got) {
                Ok(wanted.clone())
            } else {
                plan_err!("{function}: {what} must be {wanted}-like, got {got}: {usage}")
            }
        })
        .collect()
}

/// The arguments as arrays of `rows` rows, cast to Utf8.
fn text_arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<StringArray>> {
    args.iter()
        .map(|arg| {
            let array = cast(&arg.to_array(rows)?, &DataType::Utf8)?;
            Ok(array
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8")
                .clone())
        })
        .collect()
}

/// A scalar result when every argument was a scalar.
pub(crate) fn shaped(args: &[ColumnarValue], array: ArrayRef) -> Result<ColumnarValue> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

#[derive(Debug)]
struct ChannelGroup {
    config: Arc<CompiledAttribution>,
    signature: Signature,
}

impl PartialEq for ChannelGroup {
    fn eq(&self, other: &Self) -> bool {
        self.config.settings == other.config.settings
    }
}

impl Eq for ChannelGroup {}

impl std::hash::Hash for ChannelGroup {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "channel_group".hash(state);
    }
}

const CHANNEL_GROUP_USAGE: &str = "channel_group(kind, utm_source, utm_medium, referrer)";

impl ScalarUDFImpl for ChannelGroup {
    fn name(&self) -> &str {
        "channel_group"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = |what| (what, is_text as fn(&DataType) -> bool, DataType::Utf8);
        coerce(
            "channel_group",
            CHANNEL_GROUP_USAGE,
            arg_types,
            &[
                text("kind"),
                text("utm_source"),
                text("utm_medium"),
                text("referrer"),
            ],
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let columns = text_arrays(&args.args, args.number_rows)?;
        // Few distinct (kind, source, medium, referrer) tuples: match each once per batch.
        let mut seen: HashMap<[&str; 4], &str> = HashMap::new();
        let mut out = StringBuilder::with_capacity(args.number_rows, args.number_rows * 8);
        for row in 0..args.number_rows {
            let values: [&str; 4] = std::array::from_fn(|i| {
                let column = &columns[i];
                if column.is_null(row) {
                    ""
                } else {
                    column.value(row)
                }
            });
            let channel = *seen
                .entry(values)
                .or_insert_with(|| self.config.channel_of(values));
            out.append_value(channel);
        }
        shaped(&args.args, Arc::new(out.finish()))
    }
}

#[derive(Debug)]
struct IsConversion {
    statuses: Vec<String>,
    order_channels: Vec<String>,
    min_revenue: f64,
    signature: Signature,
}

impl PartialEq for IsConversion {
    fn eq(&self, other: &Self) -> bool {
        self.statuses == other.statuses
            && self.order_channels == other.order_channels
            && self.min_revenue.to_bits() == other.min_revenue.to_bits()
    }
}

impl Eq for IsConversion {}

impl std::hash::Hash for IsConversion {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.statuses.hash(state);
        self.order_channels.hash(state);
    }
}

impl ScalarUDFImpl for IsConversion {
    fn name(&self) -> &str {
        "is_conversion"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce(
            "is_conversion",
            "is_conversion(status, order_channel, revenue)",
            arg_types,
            &[
                ("status", is_text, DataType::Utf8),
                ("order_channel", is_text, DataType::Utf8),
                ("revenue", is_number, DataType::Float64),
            ],
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let text = text_arrays(&args.args[..2], rows)?;
        let revenue = cast(&args.args[2].to_array(rows)?, &DataType::Float64)?;
        let revenue = revenue
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to Float64");
        let listed = |list: &[String], value: &str| {
            let value = value.trim();
            list.iter()
                .any(|item| item.trim().eq_ignore_ascii_case(value))
        };
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let status_ok = !text[0].is_null(row) && listed(&self.statuses, text[0].value(row));
            let channel_ok = self.order_channels.is_empty()
                || (!text[1].is_null(row) && listed(&self.order_channels, text[1].value(row)));
            let amount = if revenue.is_null(row) {
                0.0
            } else {
                revenue.value(row)
            };
            out.append_value(status_ok && channel_ok && amount >= self.min_revenue);
        }
        let array: BooleanArray = out.finish();
        shaped(&args.args, Arc::new(array))
    }
}

/// `attribution_models()`: the configured models in order, with whether each is fitted on
/// all paths (Markov, Shapley) rather than credited per journey by a rule.
#[derive(Debug)]
struct ModelsFunction {
    config: Arc<CompiledAttribution>,
}

impl TableFunctionImpl for ModelsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("attribution_models() takes no argument");
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("fitted", DataType::Boolean, false),
            Field::new("position", DataType::Int32, false),
        ]));
        let models = &self.config.models;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    models.iter().map(|m| m.name()),
                )),
                Arc::new(BooleanArray::from_iter(
                    models.iter().map(|m| Some(!m.is_heuristic())),
                )),
                Arc::new(Int32Array::from_iter_values(0..models.len() as i32)),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// Registers the settings functions of a checked `[attribution]` section.
pub(crate) fn register(
    ctx: &datafusion::prelude::SessionContext,
    config: &Arc<CompiledAttribution>,
) {
    let settings = &config.settings;
    ctx.register_udf(ScalarUDF::new_from_impl(ChannelGroup {
        config: config.clone(),
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(IsConversion {
        statuses: settings.conversion.statuses.clone(),
        order_channels: settings.conversion.order_channels.clone(),
        min_revenue: settings.conversion.min_revenue,
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    // compile() bounds the days to ten years, far inside i32.
    let lookback = IntervalMonthDayNano::new(0, settings.lookback_days as i32, 0);
    ctx.register_udf(constant(
        "attribution_lookback",
        ScalarValue::IntervalMonthDayNano(Some(lookback)),
    ));
    ctx.register_udf(constant(
        "attribution_max_steps",
        ScalarValue::Int64(Some(i64::from(settings.max_steps))),
    ));
    ctx.register_udf(constant(
        "attribution_collapse_repeats",
        ScalarValue::Boolean(Some(settings.collapse_repeats)),
    ));
    ctx.register_udtf(
        "attribution_models",
        Arc::new(ModelsFunction {
            config: config.clone(),
        }),
    );
}
