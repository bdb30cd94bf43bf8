//! Per-touchpoint credits of one conversion, and the rounding rule that keeps their sums exact.

use crate::error::{AttributionError, Result};

/// Credits of one conversion, one entry per touchpoint in journey order.
///
/// `shares` sum to 1 and `revenue` sums to the conversion's revenue: the largest entry absorbs
/// the rounding of the others, so each sum is off by at most a few units in the last place
/// (about 1e-16 relative), whatever the path length.
/// Reuse one value across journeys: it keeps its buffers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Credits {
    /// Fraction of the conversion credited to each touchpoint.
    pub shares: Vec<f64>,
    /// Revenue credited to each touchpoint.
    pub revenue: Vec<f64>,
}

impl Credits {
    /// Number of touchpoints credited.
    pub fn len(&self) -> usize {
        self.shares.len()
    }

    /// Whether no touchpoint is credited.
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// Credits one conversion along `channels` in proportion to channel-level values (removal
    /// effects, Shapley values or their credited conversions): each distinct channel gets a
    /// share proportional to `value_of(channel)` (negative values count 0), split equally
    /// between its touchpoints when it repeats. If every channel counts 0, the touchpoints
    /// share equally (as `linear`). `location` names the path in errors.
    pub fn spread<S: AsRef<str>>(
        &mut self,
        channels: &[S],
        revenue: f64,
        location: &dyn Fn() -> String,
        value_of: impl Fn(&str) -> f64,
    ) -> Result<()> {
        if channels.is_empty() {
            return Err(AttributionError::EmptyPath {
                location: location(),
            });
        }
        if !revenue.is_finite() {
            return Err(AttributionError::InvalidNumber {
                location: location(),
                what: "revenue",
                value: revenue,
                requirement: "a finite amount",
            });
        }
        self.shares.clear();
        self.shares.extend(
            channels
                .iter()
                .map(|channel| value_of(channel.as_ref()).max(0.0)),
        );
        // Split each channel's value between its repeats (quadratic, but paths are short).
        for (i, channel) in channels.iter().enumerate() {
            let repeats = channels
                .iter()
                .filter(|other| other.as_ref() == channel.as_ref())
                .count();
            self.shares[i] /= repeats as f64;
        }
        self.normalize(revenue);
        Ok(())
    }

    /// Turns the non-negative weights already in `shares` into shares of 1 and splits `revenue`
    /// the same way. A zero total weight (impossible for the models' weights) falls back to
    /// equal shares rather than dividing by zero.
    pub(crate) fn normalize(&mut self, revenue: f64) {
        let total: f64 = self.shares.iter().sum();
        if total > 0.0 {
            self.shares.iter_mut().for_each(|w| *w /= total);
        } else {
            let equal = 1.0 / self.shares.len() as f64;
            self.shares.iter_mut().for_each(|w| *w = equal);
        }
        absorb_rounding(&mut self.shares, 1.0);
        self.revenue.clear();
        self.revenue
            .extend(self.shares.iter().map(|share| share * revenue));
        absorb_rounding(&mut self.revenue, revenue);
    }
}

/// Makes `values` sum to `total` by giving the rounding residue to the entry of largest
/// magnitude: it is at least `total / len`, so a residue of a few ulps never flips its sign,
/// unlike giving it to the last entry, which may be 0. Values that already sum exactly stay
/// as they are, so that 40/20/40 does not become 40/20/39.99999999999999.
pub(crate) fn absorb_rounding(values: &mut [f64], total: f64) {
    if values.iter().sum::<f64>() == total {
        return;
    }
    let Some(largest) =
        (0..values.len()).max_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()))
    else {
        return;
    };
    let others: f64 = values
        .iter()
        .enumerate()
        .filter(|&(index, _)| index != largest)
        .map(|(_, value)| value)
        .sum();
    values[largest] = total - others;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_splits_revenue_like_shares() {
        let mut credits = Credits {
            shares: vec![1.0, 2.0, 1.0],
            revenue: Vec::new(),
        };
        credits.normalize(100.0);
        assert_eq!(credits.shares, [0.25, 0.5, 0.25]);
        assert_eq!(credits.revenue, [25.0, 50.0, 25.0]);
    }

    #[test]
    fn thirds_sum_to_one() {
        let mut credits = Credits {
            shares: vec![1.0; 3],
            revenue: Vec::new(),
        };
        credits.normalize(0.1);
        let sum: f64 = credits.shares.iter().sum();
        assert!((sum - 1.0).abs() <= f64::EPSILON, "{sum}");
        let revenue: f64 = credits.revenue.iter().sum();
        assert!((revenue - 0.1).abs() <= 0.1 * f64::EPSILON, "{revenue}");
    }

    #[test]
    fn spread_splits_values_between_repeats() {
        // a is worth 3 and appears twice, b is worth 1: weights 1.5, 1, 1.5 over 4.
        let mut credits = Credits::default();
        let value = |channel: &str| if channel == "a" { 3.0 } else { 1.0 };
        credits
            .spread(&["a", "b", "a"], 8.0, &|| "test".into(), value)
            .unwrap();
        assert_eq!(credits.shares, [0.375, 0.25, 0.375]);
        assert_eq!(credits.revenue, [3.0, 2.0, 3.0]);
        // Nothing valued: equal shares; an empty path is refused.
        credits
            .spread(&["x", "y"], 1.0, &|| "test".into(), |_| 0.0)
            .unwrap();
        assert_eq!(credits.shares, [0.5, 0.5]);
        let empty: [&str; 0] = [];
        let error = credits
            .spread(&empty, 1.0, &|| "row 3".into(), |_| 1.0)
            .unwrap_err();
        assert!(error.to_string().contains("row 3"), "{error}");
    }

    #[test]
    fn zero_weights_fall_back_to_equal_shares() {
        let mut credits = Credits {
            shares: vec![0.0; 4],
            revenue: Vec::new(),
        };
        credits.normalize(8.0);
        assert_eq!(credits.shares, [0.25; 4]);
        assert_eq!(credits.revenue, [2.0; 4]);
    }
}
