//! Lifetime value as SQL: the BG/NBD and Gamma-Gamma models of `cdphub-ltv`, fitted by an
//! aggregate and applied by scalar functions, so analysts can run them on their own tables.
//!
//! Fits (aggregates; NULL inputs are skipped, as in every SQL aggregate):
//! - `bgnbd_fit(frequency, recency, t [, penalizer])` → struct `{r, alpha, a, b,
//!   log_likelihood, customers, distinct_histories, iterations, converged}`;
//! - `gamma_gamma_fit(frequency, monetary_value [, penalizer])` → struct `{p, q, v,
//!   log_likelihood, customers, one_time_buyers_skipped, iterations, converged}`.
//!
//! Predictions (scalar; a NULL input gives NULL). The parameters are a struct with the
//! fields named above: a fit's result, or `named_struct('r', 0.24, 'alpha', 4.41, ...)`.
//! - `bgnbd_p_alive(bgnbd, frequency, recency, t)`;
//! - `bgnbd_expected_purchases(bgnbd, horizon, frequency, recency, t)`: expected purchases in
//!   the next `horizon` time units; `bgnbd_expected_purchases(bgnbd, horizon)`: by a new
//!   customer in their first `horizon` time units;
//! - `gamma_gamma_expected_spend(gamma_gamma, frequency, monetary_value)`;
//! - `predicted_clv(bgnbd, gamma_gamma, horizon, frequency, recency, t, monetary_value
//!   [, discount_rate, period_length])`.
//!
//! Inputs follow the BTYD definitions (and the Python `lifetimes` library): frequency is the
//! number of repeat purchase periods, recency the age at the last purchase, t the age at the
//! end of observation, monetary_value the mean value of the repeat purchases; all times in
//! one unit (the marts use days). A fit that did not converge is returned with
//! `converged = false` rather than failing the query; invalid inputs (recency > t, a
//! fractional frequency, ...) are errors that quote the row.

mod fit;
mod predict;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub use fit::{FitKind, fit_function};
pub use predict::{PredictKind, predict_function};

/// Every lifetime-value function, for registration.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    [FitKind::BgNbd, FitKind::GammaGamma]
        .into_iter()
        .map(fit_function)
        .collect()
}

pub fn scalar_functions() -> Vec<ScalarUDF> {
    [
        PredictKind::PAlive,
        PredictKind::ExpectedPurchases,
        PredictKind::ExpectedSpend,
        PredictKind::Clv,
    ]
    .into_iter()
    .map(predict_function)
    .collect()
}
