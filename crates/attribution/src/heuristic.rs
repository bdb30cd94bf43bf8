//! The rule-based models: each journey is credited on its own, streaming.

use crate::config::PositionWeights;

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

/// One customer's touchpoints before one conversion.
///
/// Timestamps are microseconds since the Unix epoch (Arrow's `Timestamp(Microsecond)`); only
/// `time_decay` reads them. Touchpoints are in journey order, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Journey<'a, S> {
    /// Channel of each touchpoint.
    pub channels: &'a [S],
    /// Time of each touchpoint, one per channel.
    pub touch_times: &'a [i64],
    /// Time of the conversion.
    pub conversion_time: i64,
    /// Revenue of the conversion, split like the credit.
    pub revenue: f64,
}

/// A heuristic model with its parameters resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    First,
    Last,
    LastNonDirect,
    Linear,
    TimeDecay { half_life_micros: f64 },
    Position(PositionWeights),
}

impl Rule {
    /// Time decay halving every `days` days.
    pub(crate) fn time_decay(days: f64) -> Self {
        Self::TimeDecay {
            half_life_micros: days * MICROS_PER_DAY,
        }
    }

    /// Replaces `out` with the unnormalised weight of each of `len > 0` touchpoints.
    /// `is_direct(i)` tells whether touchpoint `i` is direct; `age(i)` is the time from
    /// touchpoint `i` to the conversion in microseconds (only time decay calls it).
    pub(crate) fn weights(
        &self,
        len: usize,
        is_direct: impl Fn(usize) -> bool,
        age: impl Fn(usize) -> f64,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        let last = len - 1;
        let mut only = |credited: usize| {
            out.resize(len, 0.0);
            out[credited] = 1.0;
        };
        match self {
            Self::First => only(0),
            Self::Last => only(last),
            Self::LastNonDirect => only((0..len).rev().find(|&i| !is_direct(i)).unwrap_or(last)),
            Self::Linear => out.resize(len, 1.0),
            Self::TimeDecay { half_life_micros } => {
                // A touchpoint stamped after the conversion (clock skew) counts as simultaneous.
                out.extend((0..len).map(|i| age(i).max(0.0)));
                // Measuring ages from the youngest touchpoint keeps its weight at 1, so that
                // years-old journeys do not underflow to all-zero weights.
                let youngest = out.iter().copied().fold(f64::INFINITY, f64::min);
                out.iter_mut()
                    .for_each(|a| *a = (-(*a - youngest) / half_life_micros).exp2());
            }
            Self::Position(PositionWeights {
                first,
                middle,
                last: last_weight,
            }) => match len {
                1 => out.push(1.0),
                // No middle: the ends share in proportion to their weights (equally if both
                // are 0, as the normalisation falls back to equal shares).
                2 => out.extend([*first, *last_weight]),
                _ => {
                    out.push(*first);
                    out.resize(last, middle / (len - 2) as f64);
                    out.push(*last_weight);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credits::Credits;

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
        }
    }

    fn shares(rule: &Rule, channels: &[&str], ages_days: &[f64]) -> Vec<f64> {
        let mut credits = Credits::default();
        rule.weights(
            channels.len(),
            |i| channels[i] == "direct",
            |i| ages_days[i] * MICROS_PER_DAY,
            &mut credits.shares,
        );
        credits.normalize(1.0);
        credits.shares
    }

    #[test]
    fn single_touch_rules() {
        let path = ["email", "direct", "display", "direct"];
        let ages = [0.0; 4];
        assert_eq!(shares(&Rule::First, &path, &ages), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(shares(&Rule::Last, &path, &ages), [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(
            shares(&Rule::LastNonDirect, &path, &ages),
            [0.0, 0.0, 1.0, 0.0]
        );
        assert_eq!(
            shares(&Rule::LastNonDirect, &["direct", "direct"], &ages[..2]),
            [0.0, 1.0]
        );
        assert_eq!(shares(&Rule::Linear, &path, &ages), [0.25; 4]);
    }

    #[test]
    fn time_decay_halves_per_half_life() {
        let rule = Rule::TimeDecay {
            half_life_micros: 7.0 * MICROS_PER_DAY,
        };
        // Weights 1/4, 1/2, 1 over a total of 7/4.
        let got = shares(&rule, &["a", "b", "c"], &[14.0, 7.0, 0.0]);
        assert_close(&got, &[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]);
        // Only differences of age matter, and a touch after the conversion counts as age 0.
        let old = shares(&rule, &["a", "b"], &[10_007.0, 10_000.0]);
        assert_close(&old, &[1.0 / 3.0, 2.0 / 3.0]);
        assert_eq!(shares(&rule, &["a", "b"], &[0.0, -1.0]), [0.5, 0.5]);
    }

    #[test]
    fn position_based_handles_every_length() {
        let rule = Rule::Position(PositionWeights::default());
        assert_eq!(shares(&rule, &["a"], &[0.0]), [1.0]);
        assert_eq!(shares(&rule, &["a", "b"], &[0.0; 2]), [0.5, 0.5]);
        assert_close(
            &shares(&rule, &["a", "b", "c"], &[0.0; 3]),
            &[0.4, 0.2, 0.4],
        );
        let five = shares(&rule, &["a"; 5], &[0.0; 5]);
        assert_close(&five, &[0.4, 0.2 / 3.0, 0.2 / 3.0, 0.2 / 3.0, 0.4]);
        let skewed = Rule::Position(PositionWeights {
            first: 0.6,
            middle: 0.2,
            last: 0.2,
        });
        assert_close(&shares(&skewed, &["a", "b"], &[0.0; 2]), &[0.75, 0.25]);
        let ends_only_middle = Rule::Position(PositionWeights {
            first: 0.0,
            middle: 1.0,
            last: 0.0,
        });
        assert_eq!(
            shares(&ends_only_middle, &["a", "b"], &[0.0; 2]),
            [0.5, 0.5]
        );
    }
}
