//! Model names, as analysts write them in SQL and config.

use std::fmt;
use std::str::FromStr;

use crate::error::{AttributionError, Result};

/// Highest supported Markov order: the number of past channels a state remembers.
pub const MAX_MARKOV_ORDER: usize = 3;

/// An attribution model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// All credit to the first touchpoint.
    FirstTouch,
    /// All credit to the last touchpoint.
    LastTouch,
    /// All credit to the last touchpoint whose channel is not the direct channel (the last
    /// touchpoint when every touchpoint is direct).
    LastNonDirect,
    /// Equal credit to every touchpoint.
    Linear,
    /// Credit `2^(-Δt / half_life)` per touchpoint, Δt being the time before the conversion.
    TimeDecay,
    /// First, middle and last touchpoints share fixed weights (40/20/40 by default).
    PositionBased,
    /// Removal effect of an absorbing Markov chain of the given order (1 to 3).
    Markov(MarkovOrder),
    /// Shapley value of the channels over coalition conversion rates.
    Shapley,
}

/// A Markov order in `1..=3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MarkovOrder(u8);

impl MarkovOrder {
    /// Checks that `order` is in `1..=3`.
    pub fn new(order: usize) -> Result<Self> {
        match u8::try_from(order) {
            Ok(small) if (1..=MAX_MARKOV_ORDER).contains(&order) => Ok(Self(small)),
            _ => Err(AttributionError::InvalidMarkovOrder { order }),
        }
    }

    /// The number of past channels a state remembers.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Model {
    /// Every model name, in the order documentation lists them.
    pub const NAMES: [&'static str; 10] = [
        "first_touch",
        "last_touch",
        "last_non_direct",
        "linear",
        "time_decay",
        "position_based",
        "markov",
        "markov_2",
        "markov_3",
        "shapley",
    ];

    /// The name of the model, one of [`Model::NAMES`].
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstTouch => "first_touch",
            Self::LastTouch => "last_touch",
            Self::LastNonDirect => "last_non_direct",
            Self::Linear => "linear",
            Self::TimeDecay => "time_decay",
            Self::PositionBased => "position_based",
            Self::Markov(order) => ["markov", "markov_2", "markov_3"][order.get() - 1],
            Self::Shapley => "shapley",
        }
    }

    /// Whether the model credits each journey on its own (rules), rather than learning channel
    /// values from all paths (Markov, Shapley).
    pub fn is_heuristic(self) -> bool {
        !matches!(self, Self::Markov(_) | Self::Shapley)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Model {
    type Err = AttributionError;

    /// Parses a model name, ignoring ASCII case and surrounding blanks. `markov_<n>` with `n`
    /// outside 2..=3 is reported as an unsupported order, since order 1 is spelled `markov`.
    fn from_str(text: &str) -> Result<Self> {
        let name = text.trim().to_ascii_lowercase();
        let model = match name.as_str() {
            "first_touch" => Self::FirstTouch,
            "last_touch" => Self::LastTouch,
            "last_non_direct" => Self::LastNonDirect,
            "linear" => Self::Linear,
            "time_decay" => Self::TimeDecay,
            "position_based" => Self::PositionBased,
            "markov" => Self::Markov(MarkovOrder(1)),
            "shapley" => Self::Shapley,
            other => match other.strip_prefix("markov_").map(str::parse::<usize>) {
                Some(Ok(order)) if order != 1 => Self::Markov(MarkovOrder::new(order)?),
                _ => {
                    return Err(AttributionError::UnknownModel {
                        name: text.to_string(),
                    });
                }
            },
        };
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for name in Model::NAMES {
            let model: Model = name.parse().unwrap();
            assert_eq!(model.name(), name);
            assert_eq!(model.to_string(), name);
        }
    }

    #[test]
    fn names_ignore_case_and_blanks() {
        assert_eq!(" Markov_3 ".parse::<Model>().unwrap().name(), "markov_3");
        assert_eq!("LINEAR".parse::<Model>().unwrap(), Model::Linear);
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let error = "u_shaped".parse::<Model>().unwrap_err();
        assert_eq!(
            error,
            AttributionError::UnknownModel {
                name: "u_shaped".into()
            }
        );
        let message = error.to_string();
        assert!(message.contains("u_shaped"), "{message}");
        for name in Model::NAMES {
            assert!(message.contains(name), "{message} lacks {name}");
        }
        // Order 1 has a single spelling.
        assert!(matches!(
            "markov_1".parse::<Model>(),
            Err(AttributionError::UnknownModel { .. })
        ));
    }

    #[test]
    fn orders_outside_one_to_three_are_refused() {
        for order in [0, 4, 10] {
            let error = format!("markov_{order}").parse::<Model>().unwrap_err();
            assert_eq!(error, AttributionError::InvalidMarkovOrder { order });
            assert!(error.to_string().contains("markov_2"));
        }
        assert!(MarkovOrder::new(3).is_ok());
        assert!(MarkovOrder::new(300).is_err());
    }
}
