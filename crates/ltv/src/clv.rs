//! Predicted customer lifetime value: BG/NBD purchases times Gamma-Gamma spend.

use crate::bgnbd::{BgNbdParams, CustomerSummary};
use crate::error::{LtvError, Model, Result};
use crate::gamma_gamma::{GammaGammaParams, SpendSummary};
use crate::input::check_duration;

const MODEL: Model = Model::Clv;

/// Most discounting periods in one horizon: each costs one BG/NBD prediction.
const MAX_PERIODS: f64 = 100_000.0;

/// Discounting of future spend in [`predicted_clv`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Discounting {
    /// Discount rate per period, e.g. 0.01 for 1% a month; >= 0.
    pub rate_per_period: f64,
    /// Length of one period in the data's time unit, e.g. 30 for months with data in days.
    pub period_length: f64,
}

/// Predicted value of one customer over the next `horizon` time units (the unit of the
/// fitted data), from the end of their observation period.
///
/// Without discounting it is `E[Y(horizon) | x, t_x, T] · E[M | p, q, v, m_x, x]`: the
/// BG/NBD expected number of purchases ([`BgNbdParams::conditional_expected_purchases`])
/// times the Gamma-Gamma expected spend per purchase
/// ([`GammaGammaParams::conditional_expected_average_spend`], which with frequency 0 is the
/// population mean and ignores `monetary_value`). Multiplying the two expectations is exact
/// under the Gamma-Gamma assumption that spend is independent of the purchase process
/// (Fader, Hardie & Lee 2005, "RFM and CLV", J. Marketing Research 42, 415-430).
///
/// With [`Discounting`] the horizon is cut into periods `(k-1)·L, k·L]` (the last one ends at
/// the horizon), and the spend expected in each is divided by `(1 + rate)^(end / L)`, i.e.
/// discounted from the end of its period, as `lifetimes`' `customer_lifetime_value` does:
///
/// `Σ_k E[M] · (E[Y(end_k)] - E[Y(start_k)]) / (1 + rate)^(end_k / L)`.
///
/// What it is not: it counts only purchases after the observation period, not the value
/// already realised, and no margin or acquisition cost unless `monetary_value` (and the
/// Gamma-Gamma fit) measure margin rather than revenue.
pub fn predicted_clv(
    horizon: f64,
    purchases: &BgNbdParams,
    spend: &GammaGammaParams,
    customer: &CustomerSummary,
    monetary_value: f64,
    discounting: Option<&Discounting>,
) -> Result<f64> {
    check_duration(MODEL, "horizon", horizon)?;
    let spend_summary = SpendSummary {
        frequency: customer.frequency,
        monetary_value,
    };
    let spend_per_purchase = spend.conditional_expected_average_spend(&spend_summary)?;
    let Some(discounting) = discounting else {
        let expected = purchases.conditional_expected_purchases(horizon, customer)?;
        return Ok(expected * spend_per_purchase);
    };
    let Discounting {
        rate_per_period,
        period_length,
    } = *discounting;
    if !(rate_per_period.is_finite() && rate_per_period >= 0.0) {
        return Err(LtvError::InvalidArgument {
            model: MODEL,
            name: "rate_per_period",
            value: rate_per_period,
            requirement: "a finite number >= 0 (0.01 is 1% per period)",
        });
    }
    let periods = (horizon / period_length).ceil();
    if !(period_length.is_finite() && period_length > 0.0 && periods <= MAX_PERIODS) {
        return Err(LtvError::InvalidArgument {
            model: MODEL,
            name: "period_length",
            value: period_length,
            requirement: "a finite number > 0, at most 100000 periods per horizon",
        });
    }

    let mut value = 0.0;
    let mut purchases_so_far = 0.0;
    for period in 1..=periods as usize {
        let end = (period as f64 * period_length).min(horizon);
        let cumulative = purchases.conditional_expected_purchases(end, customer)?;
        let discount = (1.0 + rate_per_period).powf(end / period_length);
        value += spend_per_purchase * (cumulative - purchases_so_far) / discount;
        purchases_so_far = cumulative;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> (BgNbdParams, GammaGammaParams) {
        (
            BgNbdParams::new(0.24, 4.4, 0.79, 2.43).unwrap(),
            GammaGammaParams::new(6.25, 3.74, 15.45).unwrap(),
        )
    }

    const REGULAR: CustomerSummary = CustomerSummary {
        frequency: 2.0,
        recency: 30.43,
        age: 38.86,
    };

    #[test]
    fn undiscounted_value_is_purchases_times_spend() {
        let (purchases, spend) = models();
        let clv = predicted_clv(52.0, &purchases, &spend, &REGULAR, 22.35, None).unwrap();
        let count = purchases
            .conditional_expected_purchases(52.0, &REGULAR)
            .unwrap();
        let summary = SpendSummary {
            frequency: 2.0,
            monetary_value: 22.35,
        };
        let per_purchase = spend.conditional_expected_average_spend(&summary).unwrap();
        assert!((clv - count * per_purchase).abs() < 1e-12 * clv);
        let zero_rate = Discounting {
            rate_per_period: 0.0,
            period_length: 4.345,
        };
        let cut = predicted_clv(52.0, &purchases, &spend, &REGULAR, 22.35, Some(&zero_rate));
        assert!((cut.unwrap() - clv).abs() < 1e-9 * clv);
    }

    #[test]
    fn discounting_lowers_value_period_by_period() {
        let (purchases, spend) = models();
        let monthly = Discounting {
            rate_per_period: 0.01,
            period_length: 4.0,
        };
        let plain = predicted_clv(8.0, &purchases, &spend, &REGULAR, 22.35, None).unwrap();
        let discounted =
            predicted_clv(8.0, &purchases, &spend, &REGULAR, 22.35, Some(&monthly)).unwrap();
        // Two periods: hand-computed from the cumulative expected purchases.
        let summary = SpendSummary {
            frequency: 2.0,
            monetary_value: 22.35,
        };
        let per_purchase = spend.conditional_expected_average_spend(&summary).unwrap();
        let first = purchases
            .conditional_expected_purchases(4.0, &REGULAR)
            .unwrap();
        let both = purchases
            .conditional_expected_purchases(8.0, &REGULAR)
            .unwrap();
        let expected = per_purchase * (first / 1.01 + (both - first) / 1.01_f64.powi(2));
        assert!((discounted - expected).abs() < 1e-12 * expected);
        assert!(discounted < plain);
    }

    #[test]
    fn bad_discounting_is_explained() {
        let (purchases, spend) = models();
        let negative = Discounting {
            rate_per_period: -0.1,
            period_length: 30.0,
        };
        let error = predicted_clv(1.0, &purchases, &spend, &REGULAR, 20.0, Some(&negative));
        assert!(
            error
                .unwrap_err()
                .to_string()
                .starts_with("CLV: rate_per_period = -0.1")
        );
        let endless = Discounting {
            rate_per_period: 0.01,
            period_length: 1e-9,
        };
        let error = predicted_clv(1.0, &purchases, &spend, &REGULAR, 20.0, Some(&endless));
        assert!(error.unwrap_err().to_string().contains("period_length"));
    }
}
