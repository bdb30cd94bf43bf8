//! Checks and indexing shared by the models' inputs.

use std::collections::HashMap;

use crate::error::{InputProblem, LtvError, Model, Result};

pub(crate) fn invalid(model: Model, row: Option<usize>, problem: InputProblem) -> LtvError {
    LtvError::InvalidInput {
        model,
        row,
        problem,
    }
}

/// A finite value >= 0.
pub(crate) fn check_non_negative(
    model: Model,
    row: Option<usize>,
    field: &'static str,
    value: f64,
) -> Result<()> {
    if !value.is_finite() {
        return Err(invalid(
            model,
            row,
            InputProblem::NonFinite { field, value },
        ));
    }
    if value < 0.0 {
        return Err(invalid(model, row, InputProblem::Negative { field, value }));
    }
    Ok(())
}

/// A whole number of repeat purchases >= 0.
pub(crate) fn check_frequency(model: Model, row: Option<usize>, frequency: f64) -> Result<()> {
    check_non_negative(model, row, "frequency", frequency)?;
    if frequency.fract() != 0.0 {
        return Err(invalid(
            model,
            row,
            InputProblem::FractionalFrequency { frequency },
        ));
    }
    Ok(())
}

/// A count of identical customers: finite and >= 0 (0 drops the row).
pub(crate) fn check_weight(model: Model, row: usize, weight: f64) -> Result<()> {
    if weight.is_finite() && weight >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            model,
            Some(row),
            InputProblem::InvalidWeight { weight },
        ))
    }
}

/// A model parameter: finite and > 0.
pub(crate) fn check_parameter(model: Model, name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(LtvError::InvalidArgument {
            model,
            name,
            value,
            requirement: "a finite number > 0",
        })
    }
}

/// A time span such as a prediction horizon: finite and >= 0.
pub(crate) fn check_duration(model: Model, name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LtvError::InvalidArgument {
            model,
            name,
            value,
            requirement: "a finite number >= 0, in the time unit of the fitted data",
        })
    }
}

/// The distinct values of a column, each given a dense index in order of first appearance,
/// so that per-value work (a logarithm, a ln-gamma) is done once per distinct value.
#[derive(Debug, Default)]
pub(crate) struct ValueIndex {
    positions: HashMap<u64, u32>,
    pub values: Vec<f64>,
}

impl ValueIndex {
    pub fn index_of(&mut self, value: f64) -> u32 {
        // + 0.0 turns -0.0 into 0.0 so that both share one index.
        let key = (value + 0.0).to_bits();
        *self.positions.entry(key).or_insert_with(|| {
            self.values.push(value);
            u32::try_from(self.values.len() - 1).expect("fewer than 2^32 distinct values")
        })
    }
}
