//! Errors of the lifetime-value models: each says which model, which input row or
//! argument, what is wrong with it and what to do.

use std::fmt;

pub type Result<T, E = LtvError> = std::result::Result<T, E>;

/// The model an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    BgNbd,
    GammaGamma,
    Clv,
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Model::BgNbd => "BG/NBD",
            Model::GammaGamma => "Gamma-Gamma",
            Model::Clv => "CLV",
        })
    }
}

/// What went wrong; the message names the model, the row or argument at fault and what
/// to do about it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LtvError {
    #[error("{model}: no customers to fit: {reason}")]
    EmptyInput { model: Model, reason: &'static str },

    #[error("{model}: {}{problem}", row_prefix(*.row))]
    InvalidInput {
        model: Model,
        /// Index of the offending row in the fitted slice; `None` for a prediction.
        row: Option<usize>,
        problem: InputProblem,
    },

    #[error("{model}: {name} = {value} is invalid: it must be {requirement}")]
    InvalidArgument {
        model: Model,
        name: &'static str,
        value: f64,
        requirement: &'static str,
    },

    #[error(
        "{model}: the maximum-likelihood fit did not converge after {iterations} iterations \
         (largest gradient component {gradient_norm:.3e}); try more iterations, a penalizer \
         such as 0.001, or more customers"
    )]
    NotConverged {
        model: Model,
        iterations: usize,
        gradient_norm: f64,
    },

    #[error(
        "{model}: the best fit drives {parameter} towards {towards}, the edge of the \
         parameter space: the data do not identify the model (too few customers or repeat \
         purchases); fit more customers or a longer period"
    )]
    Degenerate {
        model: Model,
        parameter: &'static str,
        towards: &'static str,
    },

    #[error(
        "{model}: the hypergeometric series did not converge in {terms} terms for z = {z}; \
         the horizon is very long compared with the customer's age plus alpha: shorten the horizon"
    )]
    SeriesNotConverged { model: Model, terms: usize, z: f64 },
}

fn row_prefix(row: Option<usize>) -> String {
    row.map(|row| format!("row {row}: ")).unwrap_or_default()
}

/// What is wrong with one customer's input values.
#[derive(Clone, Debug, PartialEq)]
pub enum InputProblem {
    NonFinite { field: &'static str, value: f64 },
    Negative { field: &'static str, value: f64 },
    FractionalFrequency { frequency: f64 },
    RecencyAfterAge { recency: f64, age: f64 },
    RecencyWithoutRepeat { recency: f64 },
    NonPositiveMonetaryValue { frequency: f64, monetary_value: f64 },
    InvalidWeight { weight: f64 },
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InputProblem::NonFinite { field, value } => write!(
                f,
                "{field} is {value}; it must be a finite number: drop the row or fix its source"
            ),
            InputProblem::Negative { field, value } => write!(
                f,
                "{field} is {value}; it must be zero or positive: check the time or amount it \
                 was computed from"
            ),
            InputProblem::FractionalFrequency { frequency } => write!(
                f,
                "frequency is {frequency}; it must be a whole number of repeat purchase periods"
            ),
            InputProblem::RecencyAfterAge { recency, age } => write!(
                f,
                "recency {recency} is greater than age (T) {age}; recency is the age at the \
                 last purchase and cannot exceed the age at the end of observation"
            ),
            InputProblem::RecencyWithoutRepeat { recency } => write!(
                f,
                "recency is {recency} but frequency is 0; recency is the age at the last repeat \
                 purchase (0 without one), not the time since the last purchase"
            ),
            InputProblem::NonPositiveMonetaryValue {
                frequency,
                monetary_value,
            } => write!(
                f,
                "monetary value is {monetary_value} for frequency {frequency}; the model needs \
                 a positive mean spend per repeat purchase: drop refunds-only customers or fix \
                 the amounts"
            ),
            InputProblem::InvalidWeight { weight } => write!(
                f,
                "weight is {weight}; a weight counts identical customers and must be a finite \
                 number >= 0"
            ),
        }
    }
}
