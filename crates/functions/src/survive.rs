//! `survive(value, observed_at, source, rule)`: the golden-record aggregate. Among the
//! non-NULL values a person has, it keeps one by the rule:
//! - `'most_recent'`: the latest `observed_at`;
//! - `'most_frequent'`: the value seen most often (then the most recent);
//! - `'source_priority'`: the source listed first in `[identity] source-priority` (then the
//!   most recent).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurvivorshipRule {
    MostRecent,
    MostFrequent,
    SourcePriority,
}

impl SurvivorshipRule {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "most_recent" => Some(Self::MostRecent),
            "most_frequent" => Some(Self::MostFrequent),
            "source_priority" => Some(Self::SourcePriority),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Survive {
    source_priority: Vec<String>,
    signature: Signature,
}

impl Survive {
    pub fn udaf(source_priority: Vec<String>) -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            source_priority,
            signature: Signature::new(TypeSignature::Any(4), Volatility::Immutable),
        })
    }
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl AggregateUDFImpl for Survive {
    fn name(&self) -> &str {
        "survive"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let rule_text = args
            .exprs
            .get(3)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
                _ => None,
            });
        let Some(rule_text) = rule_text else {
            return plan_err!(
                "survive: the rule (4th argument) must be a quoted rule: 'most_recent', 'most_frequent' or 'source_priority'"
            );
        };
        let Some(rule) = SurvivorshipRule::parse(&rule_text) else {
            return plan_err!(
                "survive: unknown rule '{rule_text}'; use 'most_recent', 'most_frequent' or 'source_priority'"
            );
        };
        Ok(Box::new(SurviveAccumulator {
            rule,
            value_type: args.return_field.data_type().clone(),
            source_priority: self.source_priority.clone(),
            seen: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, item: DataType| {
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(Arc::new(Field::new_list_field(item, true))),
                true,
            ))
        };
        Ok(vec![
            list("values", args.return_type().clone()),
            list("observed_at", timestamp_type()),
            list("sources", DataType::Utf8),
        ])
    }
}

/// One non-NULL observation of a field: (value, observed_at in µs, source).
type Observation = (ScalarValue, Option<i64>, Option<String>);

#[derive(Debug)]
struct SurviveAccumulator {
    rule: SurvivorshipRule,
    value_type: DataType,
    source_priority: Vec<String>,
    seen: Vec<Observation>,
}

impl SurviveAccumulator {
    fn add(&mut self, values: &ArrayRef, times: &ArrayRef, sources: &ArrayRef) -> Result<()> {
        let times = cast(times, &timestamp_type())?;
        let times = times.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let sources = cast(sources, &DataType::Utf8)?;
        let sources = sources.as_string::<i32>();
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            self.seen.push((
                ScalarValue::try_from_array(values, row)?,
                (!times.is_null(row)).then(|| times.value(row)),
                (!sources.is_null(row)).then(|| sources.value(row).to_string()),
            ));
        }
        Ok(())
    }

    fn source_rank(&self, source: Option<&str>) -> usize {
        source
            .and_then(|s| self.source_priority.iter().position(|p| p == s))
            .unwrap_or(self.source_priority.len())
    }
}

impl Accumulator for SurviveAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if values.len() < 3 {
            return exec_err!("survive(value, observed_at, source, rule) takes four arguments");
        }
        self.add(&values[0], &values[1], &values[2])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists: Vec<_> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for row in 0..lists[0].len() {
            if lists[0].is_null(row) {
                continue;
            }
            self.add(
                &lists[0].value(row),
                &lists[1].value(row),
                &lists[2].value(row),
            )?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.seen.iter().map(|s| s.0.clone()).collect();
        let times: Vec<ScalarValue> = self
            .seen
            .iter()
            .map(|s| ScalarValue::TimestampMicrosecond(s.1, Some("UTC".into())))
            .collect();
        let sources: Vec<ScalarValue> = self
            .seen
            .iter()
            .map(|s| ScalarValue::Utf8(s.2.clone()))
            .collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&times, &timestamp_type())),
            ScalarValue::List(ScalarValue::new_list_nullable(&sources, &DataType::Utf8)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        // Ties: the most recent wins, then the smallest value, so the result is deterministic.
        let recency = |a: &Observation, b: &Observation| {
            a.1.cmp(&b.1)
                .then_with(|| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal))
        };
        let best = match self.rule {
            SurvivorshipRule::MostRecent => self.seen.iter().max_by(|a, b| recency(a, b)),
            SurvivorshipRule::SourcePriority => self.seen.iter().max_by(|a, b| {
                self.source_rank(b.2.as_deref())
                    .cmp(&self.source_rank(a.2.as_deref()))
                    .then_with(|| recency(a, b))
            }),
            SurvivorshipRule::MostFrequent => {
                let mut counts: HashMap<&ScalarValue, usize> = HashMap::new();
                for seen in &self.seen {
                    *counts.entry(&seen.0).or_default() += 1;
                }
                self.seen
                    .iter()
                    .max_by(|a, b| counts[&a.0].cmp(&counts[&b.0]).then_with(|| recency(a, b)))
            }
        };
        match best {
            Some(best) => Ok(best.0.clone()),
            None => ScalarValue::try_from(&self.value_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .seen
                .iter()
                .map(|s| s.0.size() + s.2.as_ref().map_or(0, String::len) + 16)
                .sum::<usize>()
    }
}
