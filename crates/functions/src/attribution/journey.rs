//! Per-conversion credits as SQL, one list element per touchpoint:
//! - `attribute_journey(channels, touched_at, converted_at, revenue, model)` or
//!   `attribute_journey(channels, revenue, model)`: the rule models (`time_decay` needs the
//!   timestamps);
//! - `credit_path(channels, revenue, channel_values)`: one conversion spread over its path in
//!   proportion to channel-level values, such as the output of `attribute(...)` for `markov`
//!   or `shapley`.
//!
//! Both return `list<struct<step int, channel text, credit double, revenue_credit double>>`
//! (steps from 1), NULL for a NULL or empty path; `unnest` makes rows of it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, ListArray, StringArray, StringViewArray,
    StructArray, UInt32Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit, TimestampMicrosecondType};
use cdphub_attribution::{AttributionConfig, Attributor, Credits, Journey, Model};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::settings::{coerce, is_number, is_text, shaped};

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

fn is_text_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            is_text(item.data_type())
        }
        DataType::Null => true,
        _ => false,
    }
}

fn is_timestamp(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _) | DataType::Null)
}

fn is_timestamp_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            is_timestamp(item.data_type())
        }
        DataType::Null => true,
        _ => false,
    }
}

/// The fields of one credited touchpoint.
pub(crate) fn credit_fields() -> Fields {
    Fields::from(vec![
        Field::new("step", DataType::Int32, false),
        Field::new("channel", DataType::Utf8View, false),
        Field::new("credit", DataType::Float64, false),
        Field::new("revenue_credit", DataType::Float64, true),
    ])
}

fn credits_type() -> DataType {
    list_of(DataType::Struct(credit_fields()))
}

/// An argument as an array of `rows` rows cast to `data_type`.
fn argument(value: &ColumnarValue, rows: usize, data_type: &DataType) -> Result<ArrayRef> {
    Ok(cast(&value.to_array(rows)?, data_type)?)
}

/// The channel lists arrive as views (what DataFusion reads text as), so reading them and
/// taking the credited names copies no string bytes.
fn channel_list_type() -> DataType {
    list_of(DataType::Utf8View)
}

/// A path column: the offsets of each row into the channel names.
struct Paths {
    list: ListArray,
    names: StringViewArray,
}

impl Paths {
    fn new(value: &ColumnarValue, rows: usize) -> Result<Self> {
        let list = argument(value, rows, &channel_list_type())?
            .as_list::<i32>()
            .clone();
        let names = list.values().as_string_view().clone();
        Ok(Self { list, names })
    }

    /// Fills `out` with the channels of `row` and returns where they start among the names,
    /// or `None` for a NULL or empty path. A NULL channel is an error.
    fn read<'a>(
        &'a self,
        row: usize,
        function: &str,
        out: &mut Vec<&'a str>,
    ) -> Result<Option<u32>> {
        out.clear();
        if self.list.is_null(row) {
            return Ok(None);
        }
        let offsets = self.list.value_offsets();
        for index in offsets[row] as usize..offsets[row + 1] as usize {
            if self.names.is_null(index) {
                return exec_err!(
                    "{function}: step {} of a path is NULL; give every touchpoint a channel (coalesce(channel, 'unassigned'))",
                    index - offsets[row] as usize + 1
                );
            }
            out.push(self.names.value(index));
        }
        Ok((!out.is_empty()).then_some(offsets[row] as u32))
    }
}

/// Collects the credited touchpoints of every row into the list of structs.
#[derive(Default)]
struct CreditsBuilder {
    offsets: Vec<i32>,
    valid: Vec<bool>,
    steps: Vec<i32>,
    /// Where each credited channel's name is among the input names.
    channels: Vec<u32>,
    credits: Vec<f64>,
    revenue: Vec<Option<f64>>,
}

impl CreditsBuilder {
    fn with_rows(rows: usize) -> Self {
        let mut builder = Self::default();
        builder.offsets.reserve(rows + 1);
        builder.offsets.push(0);
        builder
    }

    fn push_null(&mut self) {
        self.valid.push(false);
        self.offsets.push(self.steps.len() as i32);
    }

    fn push(&mut self, first_name: u32, credits: &Credits, revenue_known: bool) {
        for (index, (share, money)) in credits.shares.iter().zip(&credits.revenue).enumerate() {
            self.steps.push(index as i32 + 1);
            self.channels.push(first_name + index as u32);
            self.credits.push(*share);
            self.revenue.push(revenue_known.then_some(*money));
        }
        self.valid.push(true);
        self.offsets.push(self.steps.len() as i32);
    }

    /// The credits, channel names taken from the paths' `names`.
    fn finish(self, names: &StringViewArray) -> Result<ArrayRef> {
        let channels = take(names, &UInt32Array::from(self.channels), None)?;
        let values = StructArray::new(
            credit_fields(),
            vec![
                Arc::new(Int32Array::from(self.steps)),
                channels,
                Arc::new(Float64Array::from(self.credits)),
                Arc::new(Float64Array::from(self.revenue)),
            ],
            None,
        );
        let item: FieldRef = Arc::new(Field::new_list_field(
            DataType::Struct(credit_fields()),
            true,
        ));
        Ok(Arc::new(ListArray::new(
            item,
            OffsetBuffer::new(self.offsets.into()),
            Arc::new(values),
            Some(NullBuffer::from(self.valid)),
        )))
    }
}

/// The model argument: one name for every row (the usual constant) or a name per row.
enum ModelNames {
    Constant(Option<String>),
    PerRow(StringArray),
}

impl ModelNames {
    fn new(value: &ColumnarValue, rows: usize) -> Result<Self> {
        Ok(match value {
            // coerce_types made it text; NULL stays NULL.
            ColumnarValue::Scalar(name) => Self::Constant(crate::scalar_text(name)),
            ColumnarValue::Array(_) => Self::PerRow(
                argument(value, rows, &DataType::Utf8)?
                    .as_string::<i32>()
                    .clone(),
            ),
        })
    }

    fn get(&self, row: usize) -> Option<&str> {
        match self {
            Self::Constant(name) => name.as_deref(),
            Self::PerRow(names) => (!names.is_null(row)).then(|| names.value(row)),
        }
    }
}

/// The attributors built so far, by name: few, so a scan beats hashing the name every row.
struct Models<'a> {
    config: &'a AttributionConfig,
    built: Vec<(String, Attributor)>,
}

impl Models<'_> {
    fn get(&mut self, name: &str) -> Result<&Attributor> {
        let position = match self.built.iter().position(|(built, _)| built == name) {
            Some(position) => position,
            None => {
                let attributor = Attributor::from_name(name, self.config.clone())
                    .or_else(|e| exec_err!("attribute_journey: {e}"))?;
                if !attributor.model().is_heuristic() {
                    return exec_err!(
                        "attribute_journey: {} is fitted on all paths at once; fit it with attribute(path, conversions, non_conversions, revenue, '{}') and spread each conversion with credit_path(channels, revenue, <that result>)",
                        attributor.model(),
                        attributor.model()
                    );
                }
                self.built.push((name.to_string(), attributor));
                self.built.len() - 1
            }
        };
        Ok(&self.built[position].1)
    }
}

#[derive(Debug)]
pub(crate) struct AttributeJourney {
    config: AttributionConfig,
    signature: Signature,
}

impl PartialEq for AttributeJourney {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl Eq for AttributeJourney {}

impl std::hash::Hash for AttributeJourney {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "attribute_journey".hash(state);
    }
}

const JOURNEY_USAGE: &str = "attribute_journey(channels, touched_at, converted_at, revenue, model) or attribute_journey(channels, revenue, model)";

impl ScalarUDFImpl for AttributeJourney {
    fn name(&self) -> &str {
        "attribute_journey"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let channels = (
            "channels",
            is_text_list as fn(&DataType) -> bool,
            channel_list_type(),
        );
        let revenue = (
            "revenue",
            is_number as fn(&DataType) -> bool,
            DataType::Float64,
        );
        let model = ("model", is_text as fn(&DataType) -> bool, DataType::Utf8);
        if arg_types.len() == 3 {
            coerce(
                "attribute_journey",
                JOURNEY_USAGE,
                arg_types,
                &[channels, revenue, model],
            )
        } else {
            let times = (
                "touched_at",
                is_timestamp_list as fn(&DataType) -> bool,
                list_of(timestamp_type()),
            );
            let converted = (
                "converted_at",
                is_timestamp as fn(&DataType) -> bool,
                timestamp_type(),
            );
            coerce(
                "attribute_journey",
                JOURNEY_USAGE,
                arg_types,
                &[channels, times, converted, revenue, model],
            )
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(credits_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let timed = args.args.len() == 5;
        let paths = Paths::new(&args.args[0], rows)?;
        let (times, converted_at) = if timed {
            let times = argument(&args.args[1], rows, &list_of(timestamp_type()))?
                .as_list::<i32>()
                .clone();
            let converted = argument(&args.args[2], rows, &timestamp_type())?
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            (Some(times), Some(converted))
        } else {
            (None, None)
        };
        // Read through the list offsets: slicing out each row's list costs more than crediting it.
        let stamps = times.as_ref().map(|times| {
            times
                .values()
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
        });
        let revenue_arg = argument(&args.args[args.args.len() - 2], rows, &DataType::Float64)?;
        let revenue = revenue_arg.as_primitive::<arrow::datatypes::Float64Type>();
        let model_names = ModelNames::new(&args.args[args.args.len() - 1], rows)?;

        let mut models = Models {
            config: &self.config,
            built: Vec::new(),
        };
        let mut out = CreditsBuilder::with_rows(rows);
        let mut channels = Vec::new();
        let mut touch_times: Vec<i64> = Vec::new();
        let mut credits = Credits::default();
        for row in 0..rows {
            let first_name = paths.read(row, "attribute_journey", &mut channels)?;
            let (Some(first_name), Some(model_name)) = (first_name, model_names.get(row)) else {
                out.push_null();
                continue;
            };
            let attributor = models.get(model_name)?;
            touch_times.clear();
            let mut conversion_time = 0;
            if let (Some(times), Some(stamps), Some(converted_at)) =
                (&times, &stamps, &converted_at)
            {
                if times.is_null(row) || converted_at.is_null(row) {
                    if attributor.model() == Model::TimeDecay {
                        out.push_null();
                        continue;
                    }
                    touch_times.resize(channels.len(), 0);
                } else {
                    let offsets = times.value_offsets();
                    let range = offsets[row] as usize..offsets[row + 1] as usize;
                    let any_null = stamps
                        .nulls()
                        .is_some_and(|nulls| range.clone().any(|index| nulls.is_null(index)));
                    if any_null && attributor.model() == Model::TimeDecay {
                        return exec_err!(
                            "attribute_journey: time_decay needs every touchpoint's time; a touched_at list holds NULL"
                        );
                    }
                    touch_times.extend(range.map(|index| {
                        if stamps.is_null(index) {
                            0
                        } else {
                            stamps.value(index)
                        }
                    }));
                    conversion_time = converted_at.value(row);
                }
            } else {
                if attributor.model() == Model::TimeDecay {
                    return exec_err!(
                        "attribute_journey: time_decay needs timestamps: call attribute_journey(channels, touched_at, converted_at, revenue, 'time_decay')"
                    );
                }
                touch_times.resize(channels.len(), 0);
            }
            let amount = if revenue.is_null(row) {
                0.0
            } else {
                revenue.value(row)
            };
            attributor
                .credit_journey(
                    &Journey {
                        channels: &channels,
                        touch_times: &touch_times,
                        conversion_time,
                        revenue: amount,
                    },
                    &mut credits,
                )
                .or_else(|e| exec_err!("attribute_journey: {e}"))?;
            out.push(first_name, &credits, !revenue.is_null(row));
        }
        shaped(&args.args, out.finish(&paths.names)?)
    }
}

/// Channel values of the row before, so that a list repeated on every row (a cross join
/// with the fitted values) is read once.
struct ValueCache<'a> {
    range: Option<(usize, usize)>,
    values: HashMap<&'a str, f64>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct CreditPath {
    signature: Signature,
}

const CREDIT_PATH_USAGE: &str = "credit_path(channels, revenue, channel_values), channel_values being a list of (channel, value) structs such as the result of attribute(...)";

fn is_channel_values(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => matches!(
            item.data_type(),
            DataType::Struct(fields) if fields.len() >= 2
                && is_text(fields[0].data_type())
                && is_number(fields[1].data_type())
        ),
        _ => false,
    }
}

impl ScalarUDFImpl for CreditPath {
    fn name(&self) -> &str {
        "credit_path"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let values_type = match arg_types.get(2) {
            Some(DataType::LargeList(item)) => DataType::List(item.clone()),
            Some(other) => other.clone(),
            None => DataType::Null,
        };
        coerce(
            "credit_path",
            CREDIT_PATH_USAGE,
            arg_types,
            &[
                ("channels", is_text_list, channel_list_type()),
                ("revenue", is_number, DataType::Float64),
                ("channel_values", is_channel_values, values_type),
            ],
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(credits_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let paths = Paths::new(&args.args[0], rows)?;
        let revenue_arg = argument(&args.args[1], rows, &DataType::Float64)?;
        let revenue = revenue_arg.as_primitive::<arrow::datatypes::Float64Type>();
        let values_arg = args.args[2].to_array(rows)?;
        let Some(values_list) = values_arg.as_list_opt::<i32>() else {
            return plan_err!("credit_path: {CREDIT_PATH_USAGE}");
        };
        let entries = values_list.values().as_struct();
        let names = cast(entries.column(0), &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let weights = cast(entries.column(1), &DataType::Float64)?;
        let weights = weights.as_primitive::<arrow::datatypes::Float64Type>();

        let mut cache = ValueCache {
            range: None,
            values: HashMap::new(),
        };
        let mut out = CreditsBuilder::with_rows(rows);
        let mut channels = Vec::new();
        let mut credits = Credits::default();
        let offsets = values_list.value_offsets();
        for row in 0..rows {
            let Some(first_name) = paths.read(row, "credit_path", &mut channels)? else {
                out.push_null();
                continue;
            };
            let range = if values_list.is_null(row) {
                (0, 0)
            } else {
                (offsets[row] as usize, offsets[row + 1] as usize)
            };
            if !cache.same_as(range, names, weights) {
                cache.load(range, names, weights);
            }
            let amount = if revenue.is_null(row) {
                0.0
            } else {
                revenue.value(row)
            };
            credits
                .spread(
                    &channels,
                    amount,
                    &|| "credit_path".to_string(),
                    |channel| cache.values.get(channel).copied().unwrap_or(0.0),
                )
                .or_else(|e| exec_err!("credit_path: {e}"))?;
            out.push(first_name, &credits, !revenue.is_null(row));
        }
        shaped(&args.args, out.finish(&paths.names)?)
    }
}

impl<'a> ValueCache<'a> {
    /// Whether `range` holds the same channels and values as the cached one.
    fn same_as(&self, range: (usize, usize), names: &StringArray, weights: &Float64Array) -> bool {
        let Some(cached) = self.range else {
            return false;
        };
        if cached == range {
            return true;
        }
        if cached.1 - cached.0 != range.1 - range.0 {
            return false;
        }
        (0..range.1 - range.0).all(|i| {
            let (a, b) = (cached.0 + i, range.0 + i);
            names.is_null(a) == names.is_null(b)
                && (names.is_null(a) || names.value(a) == names.value(b))
                && weights.is_null(a) == weights.is_null(b)
                && (weights.is_null(a) || weights.value(a) == weights.value(b))
        })
    }

    fn load(&mut self, range: (usize, usize), names: &'a StringArray, weights: &Float64Array) {
        self.values.clear();
        for index in range.0..range.1 {
            if names.is_null(index) || weights.is_null(index) {
                continue;
            }
            *self.values.entry(names.value(index)).or_default() += weights.value(index);
        }
        self.range = Some(range);
    }
}

/// The two per-conversion functions, with the model parameters of the config.
pub(crate) fn functions(config: &AttributionConfig) -> [ScalarUDF; 2] {
    [
        ScalarUDF::new_from_impl(AttributeJourney {
            config: config.clone(),
            signature: Signature::user_defined(Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(CreditPath {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
    ]
}
