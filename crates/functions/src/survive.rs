//! `survive(value, observed_at, source, rule)`: the golden-record aggregate. Among the
//! non-NULL values a person has, it keeps one by the rule:
//! - `'most_recent'`: the latest `observed_at`;
//! - `'most_frequent'`: the value seen most often (then the most recent);
//! - `'source_priority'`: the source listed first in `[identity] source-priority` (then the
//!   most recent).
//!
//! Remaining ties go to the smallest value, so the result is deterministic. Each group
//! keeps only what the rule can still pick: the best observation so far for the recency
//! rules, one candidate per distinct value (with its count) for `most_frequent`. The
//! aggregate is a [`GroupsAccumulator`]: a golden record groups millions of identifiers
//! into millions of people, where one boxed accumulator per group would dominate the time.

use std::cmp::{Ordering, Reverse};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, TimestampMicrosecondArray, UInt32Array,
    UInt64Array, new_empty_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
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

    fn groups(&self, args: &AccumulatorArgs) -> Result<SurviveGroups> {
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
        Ok(SurviveGroups::new(
            rule,
            args.return_field.data_type().clone(),
            Arc::new(self.source_priority.clone()),
        ))
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
        Ok(Box::new(SurviveAccumulator(self.groups(&args)?)))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.groups(&args)?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_types(args.return_type())
            .into_iter()
            .zip(["values", "observed_at", "source_ranks", "counts"])
            .map(|(list, name)| Arc::new(Field::new(format!("{}[{name}]", args.name), list, true)))
            .collect())
    }
}

/// The state of a group, as lists: its candidates' values, times, source ranks and counts.
fn state_types(value_type: &DataType) -> Vec<DataType> {
    [
        value_type.clone(),
        timestamp_type(),
        DataType::UInt32,
        DataType::UInt64,
    ]
    .into_iter()
    .map(|item| DataType::List(Arc::new(Field::new_list_field(item, true))))
    .collect()
}

/// A value a group may still pick: when it was (last) seen, the rank of its source (0 is
/// the most trusted; always 0 unless the rule is `source_priority`) and, for
/// `most_frequent`, how often it was seen.
#[derive(Debug, Clone)]
struct Candidate {
    value: ScalarValue,
    observed_at: Option<i64>,
    source_rank: u32,
    count: u64,
}

impl Candidate {
    /// The recency rules' order: the better source, then the later time (then, by the
    /// caller, the smaller value).
    fn recency_key(&self) -> (Reverse<u32>, Option<i64>) {
        (Reverse(self.source_rank), self.observed_at)
    }
}

/// The candidates of every group, indexed by group.
#[derive(Debug)]
struct SurviveGroups {
    rule: SurvivorshipRule,
    value_type: DataType,
    source_priority: Arc<Vec<String>>,
    groups: Vec<Vec<Candidate>>,
    /// The heap bytes of the candidates' values, kept up to date for `size`.
    value_bytes: usize,
}

impl SurviveGroups {
    fn new(
        rule: SurvivorshipRule,
        value_type: DataType,
        source_priority: Arc<Vec<String>>,
    ) -> Self {
        Self {
            rule,
            value_type,
            source_priority,
            groups: Vec::new(),
            value_bytes: 0,
        }
    }

    fn source_rank(&self, source: Option<&str>) -> u32 {
        if self.rule != SurvivorshipRule::SourcePriority {
            return 0;
        }
        let rank = source.and_then(|s| self.source_priority.iter().position(|p| p == s));
        rank.unwrap_or(self.source_priority.len()) as u32
    }

    /// Offers one observation (`count` of them for `most_frequent`) to `group`; `value`
    /// builds its value only when the rule needs to look at it.
    fn offer(
        &mut self,
        group: usize,
        observed_at: Option<i64>,
        source_rank: u32,
        count: u64,
        value: impl FnOnce() -> Result<ScalarValue>,
    ) -> Result<()> {
        let candidates = &mut self.groups[group];
        let offered = |value: ScalarValue| Candidate {
            value,
            observed_at,
            source_rank,
            count,
        };
        if self.rule == SurvivorshipRule::MostFrequent {
            let value = value()?;
            match candidates.iter_mut().find(|c| c.value == value) {
                Some(seen) => {
                    seen.count += count;
                    seen.observed_at = seen.observed_at.max(observed_at);
                }
                None => {
                    self.value_bytes += value.size();
                    candidates.push(offered(value));
                }
            }
            return Ok(());
        }
        let Some(best) = candidates.first_mut() else {
            let value = value()?;
            self.value_bytes += value.size();
            candidates.push(offered(value));
            return Ok(());
        };
        let replace = match (Reverse(source_rank), observed_at).cmp(&best.recency_key()) {
            Ordering::Less => None,
            Ordering::Greater => Some(value()?),
            Ordering::Equal => {
                Some(value()?).filter(|v| v.partial_cmp(&best.value) == Some(Ordering::Less))
            }
        };
        if let Some(value) = replace {
            self.value_bytes = (self.value_bytes + value.size()).saturating_sub(best.value.size());
            *best = offered(value);
        }
        Ok(())
    }

    /// The value `candidates` keeps by the rule; `None` when it saw no value.
    fn winner<'a>(&self, candidates: &'a [Candidate]) -> Option<&'a ScalarValue> {
        match self.rule {
            SurvivorshipRule::MostRecent | SurvivorshipRule::SourcePriority => {
                candidates.first().map(|c| &c.value)
            }
            SurvivorshipRule::MostFrequent => candidates
                .iter()
                .max_by(|a, b| {
                    (a.count, a.observed_at)
                        .cmp(&(b.count, b.observed_at))
                        .then_with(|| b.value.partial_cmp(&a.value).unwrap_or(Ordering::Equal))
                })
                .map(|c| &c.value),
        }
    }

    fn grow(&mut self, total_groups: usize) {
        if self.groups.len() < total_groups {
            self.groups.resize_with(total_groups, Vec::new);
        }
    }

    fn evaluate_groups(&self, groups: &[Vec<Candidate>]) -> Result<ArrayRef> {
        if groups.is_empty() {
            return Ok(new_empty_array(&self.value_type));
        }
        let null = ScalarValue::try_from(&self.value_type)?;
        ScalarValue::iter_to_array(groups.iter().map(|candidates| {
            self.winner(candidates)
                .cloned()
                .unwrap_or_else(|| null.clone())
        }))
    }

    fn state_of(&self, groups: &[Vec<Candidate>]) -> Result<Vec<ArrayRef>> {
        let candidates = || groups.iter().flatten();
        let values = if candidates().next().is_none() {
            new_empty_array(&self.value_type)
        } else {
            ScalarValue::iter_to_array(candidates().map(|c| c.value.clone()))?
        };
        let times: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from_iter(candidates().map(|c| c.observed_at))
                .with_timezone("UTC"),
        );
        let ranks: ArrayRef = Arc::new(UInt32Array::from_iter_values(
            candidates().map(|c| c.source_rank),
        ));
        let counts: ArrayRef =
            Arc::new(UInt64Array::from_iter_values(candidates().map(|c| c.count)));
        let offsets = OffsetBuffer::<i32>::from_lengths(groups.iter().map(Vec::len));
        state_types(&self.value_type)
            .into_iter()
            .zip([values, times, ranks, counts])
            .map(|(list_type, items)| {
                let DataType::List(field) = list_type else {
                    unreachable!("state types are lists")
                };
                Ok(Arc::new(ListArray::try_new(field, offsets.clone(), items, None)?) as ArrayRef)
            })
            .collect()
    }

    fn take_groups(&mut self, emit_to: EmitTo) -> Vec<Vec<Candidate>> {
        let taken = emit_to.take_needed(&mut self.groups);
        let bytes: usize = taken.iter().flatten().map(|c| c.value.size()).sum();
        self.value_bytes = self.value_bytes.saturating_sub(bytes);
        taken
    }
}

impl GroupsAccumulator for SurviveGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let [values, times, sources, ..] = values else {
            return exec_err!("survive(value, observed_at, source, rule) takes four arguments");
        };
        self.grow(total_num_groups);
        let times = cast(times, &timestamp_type())?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        // Only source_priority reads the sources; the cast copies the whole column.
        let sources = (self.rule == SurvivorshipRule::SourcePriority)
            .then(|| cast(sources, &DataType::Utf8))
            .transpose()?;
        let sources = sources.as_ref().map(|s| s.as_string::<i32>());
        for (row, &group) in group_indices.iter().enumerate() {
            let filtered_out = opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row));
            if values.is_null(row) || filtered_out {
                continue;
            }
            let source = sources.and_then(|s| (!s.is_null(row)).then(|| s.value(row)));
            let rank = self.source_rank(source);
            let observed_at = (!times.is_null(row)).then(|| times.value(row));
            self.offer(group, observed_at, rank, 1, || {
                ScalarValue::try_from_array(values, row)
            })?;
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let [values, times, ranks, counts] = values else {
            return exec_err!("survive: a partial state has four lists");
        };
        self.grow(total_num_groups);
        // The four lists share their offsets (state_of builds them so): the values' offsets
        // index the other lists' items too.
        let lists = values.as_list::<i32>();
        let items = lists.values();
        let times = times
            .as_list::<i32>()
            .values()
            .as_primitive::<TimestampMicrosecondType>();
        let ranks = ranks
            .as_list::<i32>()
            .values()
            .as_primitive::<arrow::datatypes::UInt32Type>();
        let counts = counts
            .as_list::<i32>()
            .values()
            .as_primitive::<arrow::datatypes::UInt64Type>();
        for (row, &group) in group_indices.iter().enumerate() {
            if lists.is_null(row) {
                continue;
            }
            let (start, end) = (lists.value_offsets()[row], lists.value_offsets()[row + 1]);
            for item in start as usize..end as usize {
                let observed_at = (!times.is_null(item)).then(|| times.value(item));
                self.offer(
                    group,
                    observed_at,
                    ranks.value(item),
                    counts.value(item),
                    || ScalarValue::try_from_array(items, item),
                )?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take_groups(emit_to);
        self.evaluate_groups(&groups)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take_groups(emit_to);
        self.state_of(&groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each row is a group of its own.
        let rows = values.first().map_or(0, |v| v.len());
        let mut single = SurviveGroups::new(
            self.rule,
            self.value_type.clone(),
            Arc::clone(&self.source_priority),
        );
        let groups: Vec<usize> = (0..rows).collect();
        single.update_batch(values, &groups, opt_filter, rows)?;
        single.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.groups.capacity() * std::mem::size_of::<Vec<Candidate>>()
            + self.groups.len() * std::mem::size_of::<Candidate>()
            + self.value_bytes
    }
}

/// `survive` without GROUP BY (or over a window): one group.
#[derive(Debug)]
struct SurviveAccumulator(SurviveGroups);

impl Accumulator for SurviveAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = values.first().map_or(0, |v| v.len());
        self.0.update_batch(values, &vec![0; rows], None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states.first().map_or(0, |v| v.len());
        self.0.merge_batch(states, &vec![0; rows], 1)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.grow(1);
        let state = self.0.state_of(&self.0.groups)?;
        state
            .iter()
            .map(|list| ScalarValue::try_from_array(list, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.grow(1);
        ScalarValue::try_from_array(&self.0.evaluate_groups(&self.0.groups)?, 0)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    /// (group, value, observed_at, source); source priority: crm_customers, then orders.
    const ROWS: &[(usize, Option<&str>, Option<i64>, &str)] = &[
        (0, Some("b"), Some(1), "orders"),
        (1, None, Some(5), "orders"),
        (0, Some("a"), Some(2), "orders"),
        (2, None, Some(1), "crm_customers"),
        (0, Some("b"), Some(3), "web_events"),
        (0, Some("c"), Some(0), "crm_customers"),
        (1, Some("z"), None, "orders"),
        (0, Some("b"), Some(0), "web_events"),
        (0, Some("a"), Some(3), "orders"),
    ];

    fn groups(rule: SurvivorshipRule) -> SurviveGroups {
        SurviveGroups {
            rule,
            value_type: DataType::Utf8,
            source_priority: Arc::new(vec!["crm_customers".into(), "orders".into()]),
            groups: Vec::new(),
            value_bytes: 0,
        }
    }

    fn columns(rows: &[(usize, Option<&str>, Option<i64>, &str)]) -> (Vec<ArrayRef>, Vec<usize>) {
        let values: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1)));
        let times: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from_iter(rows.iter().map(|r| r.2)).with_timezone("UTC"),
        );
        let sources: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3)));
        (
            vec![values, times, sources],
            rows.iter().map(|r| r.0).collect(),
        )
    }

    fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn winners(rule: SurvivorshipRule) -> Vec<Option<String>> {
        let (values, group_of) = columns(ROWS);
        let mut all = groups(rule);
        all.update_batch(&values, &group_of, None, 3).unwrap();
        texts(&all.evaluate(EmitTo::All).unwrap())
    }

    #[test]
    fn each_rule_picks_its_winner_and_ties_go_to_the_smallest_value() {
        let expected = |zero: &str| vec![Some(zero.to_string()), Some("z".to_string()), None];
        // Two values at the latest time (3): the smaller wins.
        assert_eq!(winners(SurvivorshipRule::MostRecent), expected("a"));
        // b three times, a twice.
        assert_eq!(winners(SurvivorshipRule::MostFrequent), expected("b"));
        // The one CRM value, though the oldest.
        assert_eq!(winners(SurvivorshipRule::SourcePriority), expected("c"));
    }

    #[test]
    fn partial_states_merge_to_the_same_winners() {
        for rule in [
            SurvivorshipRule::MostRecent,
            SurvivorshipRule::MostFrequent,
            SurvivorshipRule::SourcePriority,
        ] {
            let direct = winners(rule);
            // Two partial aggregates over halves of the rows, merged.
            let mut merged = groups(rule);
            for half in [&ROWS[..5], &ROWS[5..]] {
                let (values, group_of) = columns(half);
                let mut partial = groups(rule);
                partial.update_batch(&values, &group_of, None, 3).unwrap();
                let state = partial.state(EmitTo::All).unwrap();
                merged.merge_batch(&state, &[0, 1, 2], 3).unwrap();
            }
            assert_eq!(
                texts(&merged.evaluate(EmitTo::All).unwrap()),
                direct,
                "{rule:?}"
            );
            // Rows turned into states one by one (partial aggregation skipped), merged.
            let (values, group_of) = columns(ROWS);
            let mut from_rows = groups(rule);
            let state = from_rows.convert_to_state(&values, None).unwrap();
            from_rows.merge_batch(&state, &group_of, 3).unwrap();
            let first = from_rows.evaluate(EmitTo::First(1)).unwrap();
            let rest = from_rows.evaluate(EmitTo::All).unwrap();
            assert_eq!([texts(&first), texts(&rest)].concat(), direct, "{rule:?}");
        }
    }

    #[test]
    fn a_filter_drops_rows() {
        let (values, group_of) = columns(ROWS);
        // Only the first row of group 0 passes.
        let filter = BooleanArray::from_iter(ROWS.iter().enumerate().map(|(i, _)| Some(i == 0)));
        let mut filtered = groups(SurvivorshipRule::MostRecent);
        filtered
            .update_batch(&values, &group_of, Some(&filter), 3)
            .unwrap();
        let winners = texts(&filtered.evaluate(EmitTo::All).unwrap());
        assert_eq!(winners, vec![Some("b".to_string()), None, None]);
    }
}
