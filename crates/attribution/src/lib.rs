//! Marketing attribution: how much of each conversion every channel of the customer's journey
//! earned. Pure Rust; the SQL functions and marts wrap it.
//!
//! # Models
//! | name | kind | credit |
//! | --- | --- | --- |
//! | `first_touch` | rule | all to the first touchpoint |
//! | `last_touch` | rule | all to the last touchpoint |
//! | `last_non_direct` | rule | all to the last touchpoint not on the direct channel (`direct` by default); the last touchpoint if all are direct |
//! | `linear` | rule | equal |
//! | `time_decay` | rule | `2^(-Δt / half-life)`, Δt from touchpoint to conversion, half-life 7 days by default |
//! | `position_based` | rule | 40/20/40 by default, see [`PositionWeights`] for short paths |
//! | `markov`, `markov_2`, `markov_3` | fitted | removal effect of an order 1, 2 or 3 absorbing Markov chain, exact ([`markov`] describes the states) |
//! | `shapley` | fitted | Shapley value over coalition conversion rates, exact ([`shapley`] gives the characteristic function) |
//!
//! Rules credit each [`Journey`] on its own ([`Attributor::credit_journey`]), streaming.
//! Fitted models learn channel values from all paths at once ([`Attributor::attribute_paths`]
//! on a [`PathSet`] of aggregated paths with conversion and non-conversion counts), then
//! spread each conversion over its path's channels in proportion to those values
//! ([`ChannelAttribution::credit_path`]). Rules other than `time_decay` also work on paths.
//!
//! Every conversion's shares sum to 1 and its revenue credits to its revenue; channel totals
//! sum to the total conversions and revenue.
//!
//! # Sizes
//! - Rules: linear in the touchpoints, no allocation per journey when [`Credits`] is reused;
//!   3 million journeys of 1 to 10 touchpoints take 0.2 to 0.4 s per model.
//! - Markov: linear in the touchpoints to build the chain, which only has the states seen.
//!   Up to 250 states it is solved by Gaussian elimination, beyond by Gauss-Seidel sweeps;
//!   tested up to 27,930 states (order 3 over 30 channels).
//! - Shapley model: exact for any number of channels, linear in the touchpoints.
//!   [`shapley_values`], for other games, is exact up to 15 players (20 at most) by
//!   enumeration and samples random orders beyond, up to 64 players.
//!
//! ```
//! use cdphub_attribution::{AttributionConfig, Attributor, Credits, Journey, PathSet};
//!
//! let config = AttributionConfig::default();
//! let day = 86_400_000_000; // microseconds
//! let position = Attributor::from_name("position_based", config.clone())?;
//! let mut credits = Credits::default();
//! position.credit_journey(
//!     &Journey {
//!         channels: &["display", "email", "direct"],
//!         touch_times: &[0, 2 * day, 3 * day],
//!         conversion_time: 3 * day,
//!         revenue: 50.0,
//!     },
//!     &mut credits,
//! )?;
//! assert_eq!(credits.revenue, [20.0, 10.0, 20.0]);
//!
//! let mut paths = PathSet::new();
//! paths.push(&["display", "email"], 30.0, 70.0, 1500.0)?;
//! paths.push(&["email"], 10.0, 190.0, 400.0)?;
//! let markov = Attributor::from_name("markov", config)?.attribute_paths(&paths)?;
//! let total: f64 = markov.channels().iter().map(|c| c.conversions).sum();
//! assert!((total - 40.0).abs() < 1e-9);
//! # Ok::<(), cdphub_attribution::AttributionError>(())
//! ```

mod config;
mod credits;
mod error;
mod fast_hash;
mod heuristic;
mod linalg;
pub mod markov;
mod model;
mod paths;
mod result;
pub mod shapley;

pub use config::{AttributionConfig, CoalitionWorth, MarkovConfig, PositionWeights, ShapleyConfig};
pub use credits::Credits;
pub use error::{AttributionError, Result};
pub use heuristic::Journey;
pub use markov::{MAX_MARKOV_CHANNELS, MarkovSolver, MarkovSummary};
pub use model::{MAX_MARKOV_ORDER, MarkovOrder, Model};
pub use paths::{PathRef, PathSet};
pub use result::{ChannelAttribution, ChannelCredit};
pub use shapley::{ShapleyEstimate, ShapleyOptions, shapley_values};

use heuristic::Rule;

/// A model with its validated parameters.
#[derive(Debug, Clone)]
pub struct Attributor {
    model: Model,
    config: AttributionConfig,
    method: Method,
}

/// How a model computes, its parameters resolved.
#[derive(Debug, Clone)]
enum Method {
    Rule(Rule),
    Markov(MarkovOrder),
    Shapley,
}

impl Method {
    fn of(model: Model, config: &AttributionConfig) -> Self {
        match model {
            Model::FirstTouch => Self::Rule(Rule::First),
            Model::LastTouch => Self::Rule(Rule::Last),
            Model::LastNonDirect => Self::Rule(Rule::LastNonDirect),
            Model::Linear => Self::Rule(Rule::Linear),
            Model::TimeDecay => Self::Rule(Rule::time_decay(config.half_life_days)),
            Model::PositionBased => Self::Rule(Rule::Position(config.position_weights)),
            Model::Markov(order) => Self::Markov(order),
            Model::Shapley => Self::Shapley,
        }
    }
}

impl Attributor {
    /// Checks `config` (see [`AttributionConfig::validate`]) and keeps it for `model`.
    pub fn new(model: Model, config: AttributionConfig) -> Result<Self> {
        config.validate()?;
        let method = Method::of(model, &config);
        Ok(Self {
            model,
            config,
            method,
        })
    }

    /// As [`Attributor::new`], with the model by name (one of [`Model::NAMES`]).
    pub fn from_name(name: &str, config: AttributionConfig) -> Result<Self> {
        Self::new(name.parse()?, config)
    }

    /// The model this attributor runs.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The validated parameters.
    pub fn config(&self) -> &AttributionConfig {
        &self.config
    }

    /// Credits one conversion with a rule model, replacing the contents of `out` with one
    /// share and one revenue credit per touchpoint. Fitted models (Markov, Shapley) refuse:
    /// fit them with [`Attributor::attribute_paths`], then use
    /// [`ChannelAttribution::credit_path`].
    pub fn credit_journey<S: AsRef<str>>(
        &self,
        journey: &Journey<'_, S>,
        out: &mut Credits,
    ) -> Result<()> {
        let Method::Rule(rule) = &self.method else {
            return Err(AttributionError::NeedsPaths { model: self.model });
        };
        let Journey {
            channels,
            touch_times,
            conversion_time,
            revenue,
        } = *journey;
        if channels.is_empty() {
            return Err(AttributionError::EmptyPath {
                location: format!("the {} journey", self.model),
            });
        }
        if touch_times.len() != channels.len() {
            return Err(AttributionError::LengthMismatch {
                model: self.model,
                channels: channels.len(),
                times: touch_times.len(),
            });
        }
        if !revenue.is_finite() {
            return Err(AttributionError::InvalidNumber {
                location: format!("the {} journey", self.model),
                what: "revenue",
                value: revenue,
                requirement: "a finite amount",
            });
        }
        let direct = self.config.direct_channel.as_str();
        rule.weights(
            channels.len(),
            |i| channels[i].as_ref() == direct,
            // In f64 the subtraction of two i64 microsecond stamps cannot overflow.
            |i| conversion_time as f64 - touch_times[i] as f64,
            &mut out.shares,
        );
        out.normalize(revenue);
        Ok(())
    }

    /// Credits every channel over aggregated paths. Rules credit each path's conversions and
    /// revenue as they would a journey; `time_decay` refuses, paths having no timestamps.
    pub fn attribute_paths(&self, paths: &PathSet) -> Result<ChannelAttribution> {
        match &self.method {
            Method::Markov(order) => markov::attribute(paths, *order, &self.config.markov),
            Method::Shapley => Ok(shapley::attribute(paths, &self.config.shapley)),
            Method::Rule(Rule::TimeDecay { .. }) => {
                Err(AttributionError::NeedsTimestamps { model: self.model })
            }
            Method::Rule(rule) => Ok(self.attribute_paths_by_rule(rule, paths)),
        }
    }

    fn attribute_paths_by_rule(&self, rule: &Rule, paths: &PathSet) -> ChannelAttribution {
        let names = paths.channel_names();
        let direct = paths.channel_id(&self.config.direct_channel);
        let mut conversions = vec![0.0; names.len()];
        let mut revenue = vec![0.0; names.len()];
        let mut credits = Credits::default();
        for path in paths.iter() {
            let channels = path.channels;
            rule.weights(
                channels.len(),
                |i| Some(channels[i]) == direct,
                |_| 0.0,
                &mut credits.shares,
            );
            credits.normalize(path.revenue);
            for ((&channel, share), money) in
                channels.iter().zip(&credits.shares).zip(&credits.revenue)
            {
                conversions[channel as usize] += share * path.conversions;
                revenue[channel as usize] += money;
            }
        }
        let totals = result::ChannelTotals {
            names,
            conversions,
            revenue,
            removal_effects: None,
        };
        ChannelAttribution::new(
            self.model,
            totals,
            paths.total_conversions(),
            paths.total_revenue(),
            None,
        )
    }
}
