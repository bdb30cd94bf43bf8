//! `attribute(path, conversions, non_conversions [, revenue], model)`: channel credits over
//! aggregated paths, as a list of `struct<channel, conversions, revenue, removal_effect>`
//! sorted by channel (`unnest` makes rows of it). Every model but `time_decay` (paths carry no
//! timestamps); `removal_effect` is set for the Markov models only.
//!
//! Rows with a NULL or empty path are skipped; identical paths are summed before fitting,
//! and paths are fitted in name order, so the result does not depend on the row order.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListArray, ListBuilder, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use cdphub_attribution::{AttributionConfig, Attributor, ChannelAttribution, PathSet};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::journey::list_of;
use super::settings::{coerce, is_number, is_text};

const USAGE: &str = "attribute(path, conversions, non_conversions [, revenue], model), path being a list of channel names";

fn channel_fields() -> Fields {
    Fields::from(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new("conversions", DataType::Float64, false),
        Field::new("revenue", DataType::Float64, false),
        Field::new("removal_effect", DataType::Float64, true),
    ])
}

fn is_text_list(data_type: &DataType) -> bool {
    matches!(data_type, DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) if is_text(item.data_type()))
}

#[derive(Debug)]
pub(crate) struct Attribute {
    config: AttributionConfig,
    signature: Signature,
}

impl PartialEq for Attribute {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl Eq for Attribute {}

impl std::hash::Hash for Attribute {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "attribute".hash(state);
    }
}

impl Attribute {
    pub(crate) fn udaf(config: &AttributionConfig) -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            config: config.clone(),
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

/// A model usable on paths, or the reason it is not.
fn path_model(name: &str, config: &AttributionConfig) -> Result<Attributor> {
    let attributor =
        Attributor::from_name(name, config.clone()).or_else(|e| exec_err!("attribute: {e}"))?;
    if attributor.model() == cdphub_attribution::Model::TimeDecay {
        return exec_err!(
            "attribute: time_decay needs each touchpoint's time, which paths do not carry; use attribute_journey(channels, touched_at, converted_at, revenue, 'time_decay') per journey and sum the credits"
        );
    }
    Ok(attributor)
}

impl AggregateUDFImpl for Attribute {
    fn name(&self) -> &str {
        "attribute"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let path = (
            "path",
            is_text_list as fn(&DataType) -> bool,
            list_of(DataType::Utf8),
        );
        let count = |what| (what, is_number as fn(&DataType) -> bool, DataType::Float64);
        let model = ("model", is_text as fn(&DataType) -> bool, DataType::Utf8);
        let mut expected = vec![path, count("conversions"), count("non_conversions")];
        if arg_types.len() == 5 {
            expected.push(count("revenue"));
        }
        expected.push(model);
        coerce("attribute", USAGE, arg_types, &expected)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(DataType::Struct(channel_fields())))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // A quoted model is checked before any row is read.
        let literal = args
            .exprs
            .last()
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Utf8(Some(s)) => Some(s.clone()),
                _ => None,
            });
        let model = match literal {
            Some(name) => Some((name.clone(), path_model(&name, &self.config)?)),
            None => None,
        };
        Ok(Box::new(PathAccumulator {
            config: self.config.clone(),
            model,
            with_revenue: args.exprs.len() == 5,
            names: Vec::new(),
            ids: HashMap::new(),
            paths: HashMap::new(),
            key: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let field = |name: &str, data_type: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                data_type,
                true,
            ))
        };
        Ok(vec![
            field("paths", list_of(list_of(DataType::Utf8))),
            field("conversions", list_of(DataType::Float64)),
            field("non_conversions", list_of(DataType::Float64)),
            field("revenue", list_of(DataType::Float64)),
            field("model", DataType::Utf8),
        ])
    }
}

#[derive(Debug)]
struct PathAccumulator {
    config: AttributionConfig,
    model: Option<(String, Attributor)>,
    with_revenue: bool,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Conversions, non-conversions and revenue of each distinct path of channel ids.
    paths: HashMap<Vec<u32>, [f64; 3]>,
    key: Vec<u32>,
}

fn floats(array: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

fn value_or_zero(array: &Float64Array, row: usize) -> f64 {
    if array.is_null(row) {
        0.0
    } else {
        array.value(row)
    }
}

impl PathAccumulator {
    fn set_model(&mut self, name: &str) -> Result<()> {
        match &self.model {
            Some((known, _)) if known.eq_ignore_ascii_case(name.trim()) => Ok(()),
            Some((known, _)) => exec_err!(
                "attribute: one group mixes the models `{known}` and `{name}`; GROUP BY the model column"
            ),
            None => {
                let attributor = path_model(name, &self.config)?;
                self.model = Some((name.trim().to_string(), attributor));
                Ok(())
            }
        }
    }

    /// Adds the paths of `lists` (one per row) with their counts.
    fn add(
        &mut self,
        lists: &ListArray,
        counts: [&Float64Array; 3],
        models: &StringArray,
    ) -> Result<()> {
        let names = cast(lists.values(), &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let offsets = lists.value_offsets();
        for row in 0..lists.len() {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            if lists.is_null(row) || start == end {
                continue;
            }
            if !models.is_null(row) {
                self.set_model(models.value(row))?;
            }
            self.key.clear();
            for index in start..end {
                if names.is_null(index) {
                    return exec_err!(
                        "attribute: step {} of a path is NULL; give every touchpoint a channel",
                        index - start + 1
                    );
                }
                let name = names.value(index);
                let id = match self.ids.get(name) {
                    Some(&id) => id,
                    None => {
                        let id = self.names.len() as u32;
                        self.names.push(name.to_string());
                        self.ids.insert(name.to_string(), id);
                        id
                    }
                };
                self.key.push(id);
            }
            let values = [0, 1, 2].map(|i| value_or_zero(counts[i], row));
            if let Some(total) = self.paths.get_mut(self.key.as_slice()) {
                for (sum, value) in total.iter_mut().zip(values) {
                    *sum += value;
                }
            } else {
                self.paths.insert(self.key.clone(), values);
            }
        }
        Ok(())
    }

    /// Paths in channel-name order, so that results do not depend on the order rows came in.
    fn sorted_paths(&self) -> Vec<(Vec<&str>, [f64; 3])> {
        let mut paths: Vec<(Vec<&str>, [f64; 3])> = self
            .paths
            .iter()
            .map(|(key, counts)| {
                let names = key.iter().map(|&id| self.names[id as usize].as_str());
                (names.collect(), *counts)
            })
            .collect();
        paths.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        paths
    }
}

impl Accumulator for PathAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let lists = cast(&values[0], &list_of(DataType::Utf8))?;
        let conversions = floats(&values[1])?;
        let non_conversions = floats(&values[2])?;
        let revenue = if self.with_revenue {
            floats(&values[3])?
        } else {
            Float64Array::new_null(values[0].len())
        };
        let models = cast(&values[values.len() - 1], &DataType::Utf8)?;
        self.add(
            lists.as_list::<i32>(),
            [&conversions, &non_conversions, &revenue],
            models.as_string::<i32>(),
        )
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let outer = states[0].as_list::<i32>();
        let counts: Vec<&ListArray> = states[1..4].iter().map(|s| s.as_list::<i32>()).collect();
        let models = states[4].as_string::<i32>();
        for row in 0..outer.len() {
            if outer.is_null(row) {
                continue;
            }
            let paths = outer.value(row);
            let column = |i: usize| floats(&counts[i].value(row));
            let (conversions, non_conversions, revenue) = (column(0)?, column(1)?, column(2)?);
            let model = StringArray::from(vec![
                (!models.is_null(row)).then(|| models.value(row));
                paths.len()
            ]);
            self.add(
                paths.as_list::<i32>(),
                [&conversions, &non_conversions, &revenue],
                &model,
            )?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let paths = self.sorted_paths();
        let mut lists = ListBuilder::new(StringBuilder::new());
        let mut columns = [Vec::new(), Vec::new(), Vec::new()];
        for (names, counts) in &paths {
            lists.append_value(names.iter().map(|n| Some(*n)));
            for (column, value) in columns.iter_mut().zip(counts) {
                column.push(*value);
            }
        }
        let wrap = |array: ArrayRef| {
            let field = Arc::new(Field::new_list_field(array.data_type().clone(), true));
            let offsets = OffsetBuffer::from_lengths([array.len()]);
            ScalarValue::List(Arc::new(ListArray::new(field, offsets, array, None)))
        };
        let [conversions, non_conversions, revenue] =
            columns.map(|values| wrap(Arc::new(Float64Array::from(values))));
        Ok(vec![
            wrap(Arc::new(lists.finish())),
            conversions,
            non_conversions,
            revenue,
            ScalarValue::Utf8(self.model.as_ref().map(|(name, _)| name.clone())),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some((_, attributor)) = &self.model else {
            return ScalarValue::try_from(list_of(DataType::Struct(channel_fields())));
        };
        let mut set = PathSet::new();
        for (names, [conversions, non_conversions, revenue]) in self.sorted_paths() {
            set.push(&names, conversions, non_conversions, revenue)
                .or_else(|e| exec_err!("attribute: {e}"))?;
        }
        let result = attributor
            .attribute_paths(&set)
            .or_else(|e| exec_err!("attribute: {e}"))?;
        Ok(ScalarValue::List(Arc::new(channel_list(&result))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.names.iter().map(|n| 2 * n.len() + 48).sum::<usize>()
            + self.paths.keys().map(|k| 4 * k.len() + 64).sum::<usize>()
    }
}

/// One row: the list of channel credits.
fn channel_list(result: &ChannelAttribution) -> ListArray {
    let channels = result.channels();
    let values = StructArray::new(
        channel_fields(),
        vec![
            Arc::new(StringArray::from_iter_values(
                channels.iter().map(|c| c.channel.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(
                channels.iter().map(|c| c.conversions),
            )),
            Arc::new(Float64Array::from_iter_values(
                channels.iter().map(|c| c.revenue),
            )),
            Arc::new(Float64Array::from_iter(
                channels.iter().map(|c| c.removal_effect),
            )),
        ],
        None,
    );
    let field = Arc::new(Field::new_list_field(
        DataType::Struct(channel_fields()),
        true,
    ));
    ListArray::new(
        field,
        OffsetBuffer::from_lengths([channels.len()]),
        Arc::new(values),
        None,
    )
}
