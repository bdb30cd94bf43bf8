//! Shapley value: the attribution model, and a general solver for any characteristic function.
//!
//! # The model's characteristic function
//! A journey's coalition is the set of distinct channels on its path (order and repeats do
//! not matter). For every observed coalition `T`, its worth `R(T)` is by default its
//! conversion rate, `conversions / (conversions + non-conversions)` over the paths whose
//! channel set is exactly `T` ([`crate::CoalitionWorth`] can make it the conversion count).
//! Following Zhao, Mahboobi and Bagheri (2018), "Shapley Value Methods for Attribution
//! Modeling in Online Advertising", a set of channels `S` is worth what all the coalitions it
//! contains are worth:
//!
//! `v(S) = Σ_{T ⊆ S, T observed} R(T)`
//!
//! # Exact for any number of channels
//! That `v` is a sum of unanimity games `R(T) · u_T` (with `u_T(S) = 1` when `T ⊆ S`). In
//! `u_T` the members of `T` are interchangeable and the others are null players, so each member
//! gets `1 / |T|`; the Shapley value being linear in `v`,
//!
//! `φ(c) = Σ_{T ∋ c} R(T) / |T|`,
//!
//! the simplified formula of Zhao et al. It is the exact Shapley value, in time linear in the
//! input, whatever the number of channels: no enumeration of the `2^n` coalitions and no
//! sampling is needed. The tests check it against [`shapley_values`], which does enumerate.
//! Values are then scaled to sum to the total conversions (and the same shares of revenue).
//!
//! # Any other characteristic function
//! [`shapley_values`] computes the Shapley value of any game given as a function of the
//! coalition bitmask: exactly by enumeration up to [`ShapleyOptions::max_exact_players`]
//! players (15 by default), and beyond by sampling random orders of the players with a fixed
//! seed, returning a standard error with each estimate.

use std::hash::Hash;

use crate::config::{CoalitionWorth, ShapleyConfig};
use crate::error::{AttributionError, Result};
use crate::fast_hash::FastMap;
use crate::model::Model;
use crate::paths::PathSet;
use crate::result::{ChannelAttribution, ChannelTotals};

/// Most players [`shapley_values`] takes: a coalition is a `u64` bitmask.
pub const MAX_PLAYERS: usize = 64;
/// Most players [`ShapleyOptions::max_exact_players`] may allow: the table of `v` then holds
/// 2^20 values (8 MiB), and the enumeration does 20 · 2^20 steps.
pub const MAX_EXACT_PLAYERS: usize = 20;

/// Credits channels by the Shapley value of the coalition game described above.
pub(crate) fn attribute(paths: &PathSet, config: &ShapleyConfig) -> ChannelAttribution {
    let values = if paths.channel_names().len() <= MAX_PLAYERS {
        channel_values::<u64>(paths, config.worth)
    } else {
        channel_values::<Vec<u32>>(paths, config.worth)
    };
    let (total_conversions, total_revenue) = (paths.total_conversions(), paths.total_revenue());
    let totals = ChannelTotals::proportional(
        paths.channel_names(),
        &values,
        total_conversions,
        total_revenue,
    );
    ChannelAttribution::new(
        Model::Shapley,
        totals,
        total_conversions,
        total_revenue,
        None,
    )
}

/// A coalition as a map key.
trait Coalition: Hash + Eq + Ord {
    fn of(channels: &[u32]) -> Self;
    fn members(&self) -> impl Iterator<Item = usize>;
}

/// A bitmask: no allocation per path, for up to 64 channels.
impl Coalition for u64 {
    fn of(channels: &[u32]) -> Self {
        channels
            .iter()
            .fold(0, |mask, &channel| mask | 1 << channel)
    }

    fn members(&self) -> impl Iterator<Item = usize> {
        (0..u64::BITS as usize).filter(move |&channel| self >> channel & 1 == 1)
    }
}

/// The sorted channel ids, for any number of channels.
impl Coalition for Vec<u32> {
    fn of(channels: &[u32]) -> Self {
        let mut members = channels.to_vec();
        members.sort_unstable();
        members.dedup();
        members
    }

    fn members(&self) -> impl Iterator<Item = usize> {
        self.iter().map(|&channel| channel as usize)
    }
}

/// `φ(c) = Σ_{T ∋ c} R(T) / |T|` for every channel id `c`.
fn channel_values<T: Coalition>(paths: &PathSet, worth: CoalitionWorth) -> Vec<f64> {
    let mut coalitions: FastMap<T, (f64, f64)> = FastMap::default();
    for path in paths.iter() {
        let counts = coalitions.entry(T::of(path.channels)).or_default();
        counts.0 += path.conversions;
        counts.1 += path.non_conversions;
    }
    // Sorted coalitions make the sums independent of hash order.
    let mut coalitions: Vec<_> = coalitions.into_iter().collect();
    coalitions.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let mut values = vec![0.0; paths.channel_names().len()];
    for (members, (conversions, non_conversions)) in &coalitions {
        let r = match worth {
            CoalitionWorth::Conversions => *conversions,
            CoalitionWorth::ConversionRate if conversions + non_conversions > 0.0 => {
                conversions / (conversions + non_conversions)
            }
            CoalitionWorth::ConversionRate => 0.0,
        };
        let share = r / members.members().count() as f64;
        for channel in members.members() {
            values[channel] += share;
        }
    }
    values
}

/// How [`shapley_values`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapleyOptions {
    /// Up to this many players, every coalition is evaluated and the values are exact.
    pub max_exact_players: usize,
    /// Beyond, this many random orders of the players are sampled.
    pub permutations: usize,
    /// Seed of the sampling: the same seed gives the same estimate.
    pub seed: u64,
}

impl Default for ShapleyOptions {
    fn default() -> Self {
        Self {
            max_exact_players: 15,
            permutations: 10_000,
            seed: 0x5eed_5eed_5eed_5eed,
        }
    }
}

/// Shapley values of a game, with their standard errors.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapleyEstimate {
    /// One value per player; they sum to `v(all) − v(none)` (efficiency), also when sampled.
    pub values: Vec<f64>,
    /// Standard error of each value: 0 when exact, else the sample standard deviation of the
    /// player's marginal contributions over the square root of the number of orders.
    pub std_errors: Vec<f64>,
    /// Orders of players sampled; 0 when every coalition was enumerated.
    pub permutations: usize,
}

impl ShapleyEstimate {
    /// Whether the values are exact rather than sampled.
    pub fn is_exact(&self) -> bool {
        self.permutations == 0
    }
}

/// The Shapley value of each of `players` players in the game `value`, which maps a coalition
/// (bit `i` set when player `i` is in) to its worth.
///
/// Exact when `players <= options.max_exact_players`: `value` is called once per coalition and
/// `φ(i) = Σ_{S ∌ i} |S|! (n − |S| − 1)! / n! · (v(S ∪ {i}) − v(S))`. Otherwise the mean
/// marginal contribution over `options.permutations` random orders, `n + 1` calls per order.
pub fn shapley_values(
    players: usize,
    value: impl FnMut(u64) -> f64,
    options: &ShapleyOptions,
) -> Result<ShapleyEstimate> {
    let invalid = |problem: String| Err(AttributionError::InvalidShapleyOptions { problem });
    if players > MAX_PLAYERS {
        return invalid(format!(
            "{players} players is more than the {MAX_PLAYERS} supported"
        ));
    }
    if options.max_exact_players > MAX_EXACT_PLAYERS {
        return invalid(format!(
            "max-exact-players is {}, above the {MAX_EXACT_PLAYERS} whose 2^n table fits in \
             memory; lower it and let larger games be sampled",
            options.max_exact_players
        ));
    }
    if players <= options.max_exact_players {
        return Ok(enumerate(players, value));
    }
    if options.permutations < 2 {
        return invalid(format!(
            "{} permutations cannot give a standard error; sample at least 2 (thousands for \
             precision)",
            options.permutations
        ));
    }
    Ok(sample(players, value, options))
}

fn enumerate(players: usize, mut value: impl FnMut(u64) -> f64) -> ShapleyEstimate {
    let worth: Vec<f64> = (0..1u64 << players).map(&mut value).collect();
    // weight[s] = s! (n - s - 1)! / n! = 1 / (n · C(n - 1, s)), built without factorials.
    let mut weights = Vec::with_capacity(players);
    let mut binomial = 1.0;
    for size in 0..players {
        weights.push(1.0 / (players as f64 * binomial));
        binomial = binomial * (players - 1 - size) as f64 / (size + 1) as f64;
    }
    let mut values = vec![0.0; players];
    for (coalition, &before) in worth.iter().enumerate() {
        let size = coalition.count_ones() as usize;
        if size == players {
            continue; // nobody left to join
        }
        for (player, total) in values.iter_mut().enumerate() {
            let bit = 1 << player;
            if coalition & bit == 0 {
                *total += weights[size] * (worth[coalition | bit] - before);
            }
        }
    }
    ShapleyEstimate {
        values,
        std_errors: vec![0.0; players],
        permutations: 0,
    }
}

fn sample(
    players: usize,
    mut value: impl FnMut(u64) -> f64,
    options: &ShapleyOptions,
) -> ShapleyEstimate {
    let mut random = SplitMix64(options.seed);
    let mut order: Vec<usize> = (0..players).collect();
    // Welford's running mean and sum of squared deviations, per player.
    let mut means = vec![0.0; players];
    let mut squares = vec![0.0; players];
    let empty = value(0);
    for drawn in 1..=options.permutations {
        // Fisher-Yates; reshuffling the previous order is as uniform as shuffling 0..n.
        for i in (1..players).rev() {
            order.swap(i, random.below(i + 1));
        }
        let (mut coalition, mut before) = (0u64, empty);
        for &player in &order {
            coalition |= 1 << player;
            let after = value(coalition);
            let contribution = after - before;
            let delta = contribution - means[player];
            means[player] += delta / drawn as f64;
            squares[player] += delta * (contribution - means[player]);
            before = after;
        }
    }
    let draws = options.permutations as f64;
    let std_errors = squares
        .iter()
        .map(|square| (square / (draws - 1.0) / draws).sqrt())
        .collect();
    ShapleyEstimate {
        values: means,
        std_errors,
        permutations: options.permutations,
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, and its output is fixed forever, so a seed
/// reproduces an estimate across releases, unlike a library generator that may change.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` by multiply-shift; the bias, below 2^-40 for our bounds, is
    /// far under the sampling error.
    fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next()) * bound as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmask_and_sorted_coalitions_agree() {
        let mut paths = PathSet::new();
        for (path, conversions, non_conversions) in [
            (&["c", "a", "c"][..], 2.0, 1.0),
            (&["a", "c"], 1.0, 3.0),
            (&["b"], 0.0, 4.0),
            (&["d", "b", "a"], 5.0, 0.0),
        ] {
            paths.push(path, conversions, non_conversions, 0.0).unwrap();
        }
        for worth in [CoalitionWorth::ConversionRate, CoalitionWorth::Conversions] {
            let masks = channel_values::<u64>(&paths, worth);
            let sorted = channel_values::<Vec<u32>>(&paths, worth);
            assert_eq!(masks, sorted);
        }
        // Ids in order of appearance: c, a, b, d. {a, c} converts 3 of 7, split over two;
        // {b} never converts; {a, b, d} converts 5 of 5, split over three.
        let values = channel_values::<u64>(&paths, CoalitionWorth::ConversionRate);
        let want = [3.0 / 14.0, 3.0 / 14.0 + 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];
        for (got, want) in values.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{values:?}");
        }
    }

    #[test]
    fn glove_game() {
        // Player 0 has a left glove, players 1 and 2 right gloves; a pair is worth 1.
        let game = |s: u64| f64::from(u8::from(s & 1 == 1 && s & 0b110 != 0));
        let exact = shapley_values(3, game, &ShapleyOptions::default()).unwrap();
        assert!(exact.is_exact());
        let want = [2.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0];
        for (got, want) in exact.values.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{:?}", exact.values);
        }
        let options = ShapleyOptions {
            max_exact_players: 0,
            permutations: 20_000,
            seed: 7,
        };
        let sampled = shapley_values(3, game, &options).unwrap();
        assert_eq!(sampled.permutations, 20_000);
        for ((got, want), error) in sampled.values.iter().zip(want).zip(&sampled.std_errors) {
            assert!(
                *error > 0.0 && (got - want).abs() < 5.0 * error,
                "{sampled:?}"
            );
        }
        assert_eq!(shapley_values(3, game, &options).unwrap(), sampled);
    }

    #[test]
    fn refuses_impossible_options() {
        let game = |_: u64| 0.0;
        let too_exact = ShapleyOptions {
            max_exact_players: 30,
            ..ShapleyOptions::default()
        };
        assert!(shapley_values(3, game, &too_exact).is_err());
        assert!(shapley_values(65, game, &ShapleyOptions::default()).is_err());
        let one_sample = ShapleyOptions {
            max_exact_players: 2,
            permutations: 1,
            seed: 0,
        };
        let message = shapley_values(3, game, &one_sample)
            .unwrap_err()
            .to_string();
        assert!(message.contains("at least 2"), "{message}");
    }
}
