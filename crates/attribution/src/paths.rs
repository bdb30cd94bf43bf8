//! Aggregated paths, the input of the fitted models: a channel sequence with its outcomes.

use crate::error::{AttributionError, Result};
use crate::fast_hash::FastMap;

/// Paths with their conversion and non-conversion counts, channels interned as small ids.
///
/// The same sequence may be pushed several times (from different partitions, say): every
/// model sums the counts, so duplicates are equivalent to one path with summed counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathSet {
    names: Vec<String>,
    ids: FastMap<String, u32>,
    /// Channel ids of all paths end to end; path `i` is `touches[ends[i - 1]..ends[i]]`.
    touches: Vec<u32>,
    ends: Vec<usize>,
    conversions: Vec<f64>,
    non_conversions: Vec<f64>,
    revenue: Vec<f64>,
}

/// One path of a [`PathSet`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathRef<'a> {
    /// Channel ids, oldest touchpoint first; [`PathSet::channel_name`] names them.
    pub channels: &'a [u32],
    /// Journeys along this path that converted (may be fractional, e.g. weighted).
    pub conversions: f64,
    /// Journeys along this path that did not convert.
    pub non_conversions: f64,
    /// Total revenue of the conversions.
    pub revenue: f64,
}

impl PathSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path. Counts must be finite and not negative, revenue finite, and the path not
    /// empty; on error nothing is added.
    pub fn push<S: AsRef<str>>(
        &mut self,
        channels: &[S],
        conversions: f64,
        non_conversions: f64,
        revenue: f64,
    ) -> Result<()> {
        let location = || format!("path #{} of the path set", self.ends.len() + 1);
        if channels.is_empty() {
            return Err(AttributionError::EmptyPath {
                location: location(),
            });
        }
        for (what, value) in [
            ("conversions", conversions),
            ("non-conversions", non_conversions),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(AttributionError::InvalidNumber {
                    location: location(),
                    what,
                    value,
                    requirement: "a finite count, not negative",
                });
            }
        }
        if !revenue.is_finite() {
            return Err(AttributionError::InvalidNumber {
                location: location(),
                what: "revenue",
                value: revenue,
                requirement: "a finite amount",
            });
        }
        for channel in channels {
            let id = self.intern(channel.as_ref());
            self.touches.push(id);
        }
        self.ends.push(self.touches.len());
        self.conversions.push(conversions);
        self.non_conversions.push(non_conversions);
        self.revenue.push(revenue);
        Ok(())
    }

    /// Adds every path of `other` (to merge partial aggregates).
    pub fn append(&mut self, other: &PathSet) {
        let remap: Vec<u32> = other.names.iter().map(|name| self.intern(name)).collect();
        for path in other.iter() {
            self.touches
                .extend(path.channels.iter().map(|&id| remap[id as usize]));
            self.ends.push(self.touches.len());
            self.conversions.push(path.conversions);
            self.non_conversions.push(path.non_conversions);
            self.revenue.push(path.revenue);
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 channels");
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// Number of paths pushed.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no path was pushed.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Names of the channels seen, indexed by channel id.
    pub fn channel_names(&self) -> &[String] {
        &self.names
    }

    /// Name of channel `id`. Panics if no channel has this id.
    pub fn channel_name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Id of a channel, if any path has it.
    pub fn channel_id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Path `index`, in push order. Panics if `index >= self.len()`.
    pub fn get(&self, index: usize) -> PathRef<'_> {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.ends[previous]);
        PathRef {
            channels: &self.touches[start..self.ends[index]],
            conversions: self.conversions[index],
            non_conversions: self.non_conversions[index],
            revenue: self.revenue[index],
        }
    }

    /// Every path, in push order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PathRef<'_>> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// Sum of conversions over all paths.
    pub fn total_conversions(&self) -> f64 {
        self.conversions.iter().sum()
    }

    /// Sum of revenue over all paths.
    pub fn total_revenue(&self) -> f64 {
        self.revenue.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_channels_and_keeps_paths_in_order() {
        let mut paths = PathSet::new();
        paths.push(&["email", "display"], 2.0, 1.0, 30.0).unwrap();
        paths.push(&["display"], 0.0, 5.0, 0.0).unwrap();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths.channel_names(), ["email", "display"]);
        assert_eq!(paths.get(0).channels, [0, 1]);
        assert_eq!(paths.get(1).channels, [1]);
        assert_eq!(paths.get(1).non_conversions, 5.0);
        assert_eq!(paths.total_conversions(), 2.0);
        assert_eq!(paths.total_revenue(), 30.0);
    }

    #[test]
    fn append_remaps_channel_ids() {
        let mut left = PathSet::new();
        left.push(&["a", "b"], 1.0, 0.0, 1.0).unwrap();
        let mut right = PathSet::new();
        right.push(&["c", "a"], 1.0, 2.0, 3.0).unwrap();
        left.append(&right);
        assert_eq!(left.channel_names(), ["a", "b", "c"]);
        assert_eq!(left.get(1).channels, [2, 0]);
        assert_eq!(left.get(1).non_conversions, 2.0);
    }

    #[test]
    fn refuses_bad_paths_without_adding_them() {
        let mut paths = PathSet::new();
        let empty: [&str; 0] = [];
        let error = paths.push(&empty, 1.0, 0.0, 0.0).unwrap_err();
        assert!(error.to_string().contains("path #1"), "{error}");
        let error = paths.push(&["a"], -1.0, 0.0, 0.0).unwrap_err();
        assert!(error.to_string().contains("conversions is -1"), "{error}");
        let error = paths.push(&["a"], 1.0, f64::NAN, 0.0).unwrap_err();
        assert!(error.to_string().contains("non-conversions"), "{error}");
        let error = paths.push(&["a"], 1.0, 0.0, f64::INFINITY).unwrap_err();
        assert!(error.to_string().contains("revenue"), "{error}");
        assert!(paths.is_empty());
        assert!(paths.channel_names().is_empty());
    }
}
