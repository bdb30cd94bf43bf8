//! Integration tests of cdphub-attribution: hand-worked and independently computed results,
//! and the invariants every model keeps, as property tests.

mod config;
mod heuristics;
mod markov;
mod shapley;

use cdphub_attribution::{AttributionConfig, Attributor, ChannelAttribution, PathSet};
use proptest::prelude::*;

/// An aggregated path as the tests write it.
#[derive(Debug, Clone)]
pub struct RawPath {
    pub channels: Vec<String>,
    pub conversions: f64,
    pub non_conversions: f64,
    pub revenue: f64,
}

/// Parses `"a>b>c"` into a path with the given counts and no revenue.
pub fn raw(path: &str, conversions: f64, non_conversions: f64) -> RawPath {
    RawPath {
        channels: path.split('>').map(str::to_string).collect(),
        conversions,
        non_conversions,
        revenue: 0.0,
    }
}

pub fn path_set(paths: &[RawPath]) -> PathSet {
    let mut set = PathSet::new();
    for path in paths {
        set.push(
            &path.channels,
            path.conversions,
            path.non_conversions,
            path.revenue,
        )
        .unwrap();
    }
    set
}

pub fn fit(model: &str, config: AttributionConfig, paths: &[RawPath]) -> ChannelAttribution {
    Attributor::from_name(model, config)
        .unwrap()
        .attribute_paths(&path_set(paths))
        .unwrap()
}

/// Channel names `a`, `b`, … for ids `0..`.
pub fn channel_name(id: usize) -> String {
    char::from(b'a' + id as u8).to_string()
}

/// Random aggregated paths over `channels` channels, up to `max_len` touchpoints each, with
/// small integer counts and revenue proportional to conversions.
pub fn raw_paths(
    channels: usize,
    max_len: usize,
    max_paths: usize,
) -> impl Strategy<Value = Vec<RawPath>> {
    let path = (
        prop::collection::vec(0..channels, 1..=max_len),
        0u32..5,
        0u32..5,
        1u32..500,
    )
        .prop_map(|(ids, conversions, non_conversions, price)| RawPath {
            channels: ids.into_iter().map(channel_name).collect(),
            conversions: f64::from(conversions),
            non_conversions: f64::from(non_conversions),
            revenue: f64::from(conversions * price),
        });
    prop::collection::vec(path, 1..=max_paths)
}

/// `|got - want| <= tolerance · max(1, |want|)`, with a message naming `what`.
#[track_caller]
pub fn assert_close(got: f64, want: f64, tolerance: f64, what: &str) {
    let scale = want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tolerance * scale,
        "{what}: got {got}, want {want} (difference {:e})",
        (got - want).abs()
    );
}
