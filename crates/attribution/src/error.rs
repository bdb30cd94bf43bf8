//! The one error type of the crate. Every message says what is wrong and what to do.

use crate::model::{MAX_MARKOV_ORDER, Model};

/// The result of every fallible function of the crate.
pub type Result<T, E = AttributionError> = std::result::Result<T, E>;

/// What went wrong: a bad setting, model name or input. Messages name the model or path
/// involved and say how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttributionError {
    #[error(
        "unknown attribution model `{name}`: use one of {}",
        Model::NAMES.join(", ")
    )]
    UnknownModel { name: String },

    #[error(
        "Markov order {order} is not supported: use `markov` (order 1), `markov_2` or `markov_3` \
         (orders 1 to {MAX_MARKOV_ORDER})"
    )]
    InvalidMarkovOrder { order: usize },

    #[error(
        "position-based weights first={first}, middle={middle}, last={last}: {problem}; \
         give three non-negative weights that sum to 1, such as 0.4, 0.2, 0.4"
    )]
    InvalidPositionWeights {
        first: f64,
        middle: f64,
        last: f64,
        problem: &'static str,
    },

    #[error(
        "time-decay half-life of {days} days: it must be a positive, finite number of days, such as 7"
    )]
    InvalidHalfLife { days: f64 },

    #[error("markov.max-sweeps is 0: allow at least one sweep, such as the default 100000")]
    ZeroMaxSweeps,

    #[error(
        "the direct channel name is empty: name the channel `last_non_direct` skips, such as `direct`"
    )]
    EmptyDirectChannel,

    #[error(
        "{location} has no touchpoint, so there is nothing to credit; \
         drop conversions without a touchpoint in the lookback window before attributing"
    )]
    EmptyPath { location: String },

    #[error(
        "{model}: the journey has {channels} touchpoints but {times} timestamps; \
         give one timestamp per touchpoint"
    )]
    LengthMismatch {
        model: Model,
        channels: usize,
        times: usize,
    },

    #[error("{location}: {what} is {value}; it must be {requirement}")]
    InvalidNumber {
        location: String,
        what: &'static str,
        value: f64,
        requirement: &'static str,
    },

    #[error(
        "{model} needs touchpoint timestamps, which aggregated paths do not carry; \
         attribute the journeys one by one instead"
    )]
    NeedsTimestamps { model: Model },

    #[error(
        "{model} is fitted on all paths at once: build a PathSet, call attribute_paths, then \
         spread each conversion with ChannelAttribution::credit_path"
    )]
    NeedsPaths { model: Model },

    #[error(
        "{model}: {count} distinct channels is more than the {limit} supported; group channels before attributing"
    )]
    TooManyChannels {
        model: Model,
        count: usize,
        limit: usize,
    },

    #[error(
        "{model}: the Markov chain of {states} states did not converge within {sweeps} sweeps \
         (its bounds still {gap:e} apart); raise markov.max-sweeps or markov.dense-max-states"
    )]
    NotConverged {
        model: Model,
        states: usize,
        sweeps: usize,
        gap: f64,
    },

    #[error(
        "{model}: the Markov chain of {states} states is singular, which a chain built from \
         paths cannot be; please report this with the input paths"
    )]
    SingularChain { model: Model, states: usize },

    #[error("Shapley options: {problem}")]
    InvalidShapleyOptions { problem: String },
}
