//! Seeded random streams and the few distributions the generator needs.
//!
//! Every person (and every other unit of work) draws from its own stream derived from
//! `(seed, purpose, index)`, so the output never depends on the order or the thread in
//! which units are generated.

use rand::Rng;
use rand_pcg::Pcg64;

/// What a random stream is used for; part of the stream's identity.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Profile = 1,
    Household = 2,
    Life = 3,
    Catalog = 4,
    AdSpend = 5,
    Keys = 6,
}

/// SplitMix64 finaliser: a bijection on u64 with good avalanche, used both to derive
/// seeds and to scramble identifiers without collisions.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream for unit `index` of `stream` under `seed`.
pub(crate) fn stream_rng(seed: u64, stream: Stream, index: u64) -> Pcg64 {
    let base = mix64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let a = mix64(base ^ (stream as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
    let b = mix64(a ^ index);
    let c = mix64(b ^ 0x2545_f491_4f6c_dd1d);
    let d = mix64(c.wrapping_add(index));
    Pcg64::new(
        (u128::from(a) << 64) | u128::from(b),
        (u128::from(c) << 64) | u128::from(d),
    )
}

/// A uniform float in [0, 1).
pub(crate) fn unit(rng: &mut Pcg64) -> f64 {
    rng.random::<f64>()
}

/// True with probability `p` (any p; values outside [0, 1] saturate).
pub(crate) fn chance(rng: &mut Pcg64, p: f64) -> bool {
    unit(rng) < p
}

/// Uniform integer in `lo..=hi`.
pub(crate) fn between(rng: &mut Pcg64, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

/// Number of failures before the first success, success probability `p`.
pub(crate) fn geometric(rng: &mut Pcg64, p: f64, cap: u32) -> u32 {
    let u = 1.0 - unit(rng); // (0, 1]
    let n = (u.ln() / (1.0 - p).ln()).floor();
    if n.is_finite() && n >= 0.0 {
        (n as u32).min(cap)
    } else {
        0
    }
}

/// Pareto draw with minimum `scale` and tail index `shape`.
pub(crate) fn pareto(rng: &mut Pcg64, scale: f64, shape: f64) -> f64 {
    scale / (1.0 - unit(rng)).powf(1.0 / shape)
}

/// Standard normal draw (Box-Muller).
pub(crate) fn normal(rng: &mut Pcg64) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Exponential draw with the given mean.
pub(crate) fn exponential(rng: &mut Pcg64, mean: f64) -> f64 {
    -(1.0 - unit(rng)).ln() * mean
}

/// A uniformly chosen element of a non-empty slice.
pub(crate) fn pick<'a, T>(rng: &mut Pcg64, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An element of a small non-empty `(value, weight)` table, chosen by weight.
pub(crate) fn pick_weighted<'a, T>(rng: &mut Pcg64, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut target = unit(rng) * total;
    for (value, weight) in items {
        if target < *weight {
            return value;
        }
        target -= weight;
    }
    &items[items.len() - 1].0
}

/// Cumulative weights for sampling an index, optionally restricted to a sub-range.
#[derive(Debug, Clone)]
pub(crate) struct CumulativeTable {
    /// `cum[i]` = sum of weights[0..i]; one more entry than there are weights.
    cum: Vec<f64>,
}

impl CumulativeTable {
    pub(crate) fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut cum = vec![0.0];
        let mut total = 0.0;
        for w in weights {
            total += w.max(0.0);
            cum.push(total);
        }
        Self { cum }
    }

    pub(crate) fn len(&self) -> usize {
        self.cum.len() - 1
    }

    /// An index in `0..len()` drawn by weight.
    pub(crate) fn sample(&self, rng: &mut Pcg64) -> usize {
        self.sample_range(rng, 0, self.len() - 1)
    }

    /// An index in `lo..=hi` drawn by weight; uniform when that range has no weight.
    pub(crate) fn sample_range(&self, rng: &mut Pcg64, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len() - 1);
        let lo = lo.min(hi);
        let (from, to) = (self.cum[lo], self.cum[hi + 1]);
        if to <= from {
            return lo + rng.random_range(0..=hi - lo);
        }
        let target = from + unit(rng) * (to - from);
        // First index whose cumulative end exceeds the target.
        let pos = self.cum[lo + 1..=hi + 1].partition_point(|&c| c <= target);
        (lo + pos).min(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream_rng(7, Stream::Life, 3).random())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = stream_rng(7, Stream::Life, 3);
        let mut y = stream_rng(7, Stream::Life, 4);
        let mut z = stream_rng(8, Stream::Life, 3);
        let (vx, vy, vz): (u64, u64, u64) = (x.random(), y.random(), z.random());
        assert_ne!(vx, vy);
        assert_ne!(vx, vz);
    }

    #[test]
    fn restricted_sampling_stays_in_range_and_skips_zero_weights() {
        let table = CumulativeTable::new([1.0, 0.0, 2.0, 3.0, 0.0]);
        let mut rng = stream_rng(1, Stream::Catalog, 0);
        for _ in 0..1000 {
            let i = table.sample_range(&mut rng, 1, 3);
            assert!(i == 2 || i == 3, "{i}");
        }
        // A range with no weight at all falls back to uniform.
        assert_eq!(table.sample_range(&mut rng, 4, 4), 4);
        let all: Vec<usize> = (0..1000).map(|_| table.sample(&mut rng)).collect();
        assert!(!all.contains(&1) && !all.contains(&4));
    }

    #[test]
    fn geometric_mean_is_plausible() {
        let mut rng = stream_rng(1, Stream::Catalog, 1);
        let n = 20_000;
        let sum: u64 = (0..n)
            .map(|_| u64::from(geometric(&mut rng, 0.5, 100)))
            .sum();
        let mean = sum as f64 / f64::from(n);
        assert!((mean - 1.0).abs() < 0.1, "{mean}");
    }
}
