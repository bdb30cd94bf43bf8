//! Gamma-Gamma model of spend per transaction, after Fader & Hardie (2013), "The
//! Gamma-Gamma Model of Monetary Value" (note 025, brucehardie.com), building on
//! Colombo & Jiang (1999).
//!
//! A customer's transaction values are Gamma(p, ν); across customers ν ~ Gamma(q, v)
//! (v is γ in the note). Spend is assumed independent of the purchase process, so the
//! model is fitted on repeat customers only and combined with BG/NBD for CLV.

use crate::error::{InputProblem, LtvError, Model, Result};
use crate::input::{ValueIndex, check_frequency, check_parameter, check_weight, invalid};
use crate::optimize::{FitOptions, minimize};
use crate::special::{digamma, ln_gamma};

const MODEL: Model = Model::GammaGamma;

/// One customer's spend, the Gamma-Gamma input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendSummary {
    /// x: the number of repeat transactions whose values are averaged.
    pub frequency: f64,
    /// m_x: the mean value of those transactions; ignored when `frequency` is 0.
    pub monetary_value: f64,
}

impl SpendSummary {
    /// Checks a whole non-negative frequency, a finite monetary value, and a positive one
    /// when the frequency is positive.
    pub fn validate(&self, model: Model, row: Option<usize>) -> Result<()> {
        check_frequency(model, row, self.frequency)?;
        let SpendSummary {
            frequency,
            monetary_value,
        } = *self;
        if !monetary_value.is_finite() {
            let field = "monetary value";
            let problem = InputProblem::NonFinite {
                field,
                value: monetary_value,
            };
            return Err(invalid(model, row, problem));
        }
        if frequency > 0.0 && monetary_value <= 0.0 {
            let problem = InputProblem::NonPositiveMonetaryValue {
                frequency,
                monetary_value,
            };
            return Err(invalid(model, row, problem));
        }
        Ok(())
    }
}

/// Parameters of the Gamma-Gamma model: shape `p` of the transaction values, and shape `q`
/// and scale `v` (γ in Fader & Hardie) of the distribution of their rate ν across customers.
/// Build them with [`GammaGammaParams::new`], which checks them, or take them from a fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// A fitted Gamma-Gamma model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGammaFit {
    pub params: GammaGammaParams,
    /// Log-likelihood of the repeat customers' mean spends at `params`, without the penalty.
    pub log_likelihood: f64,
    /// Number of repeat customers fitted (the sum of their weights).
    pub customers: f64,
    /// Number of customers left out because they have no repeat transaction (frequency 0).
    pub one_time_buyers_skipped: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Fits the Gamma-Gamma model by maximum likelihood to one row per customer. Customers
/// with frequency 0 carry no spend information and are skipped (and counted).
pub fn fit_gamma_gamma(customers: &[SpendSummary], options: &FitOptions) -> Result<GammaGammaFit> {
    let groups = customers.iter().map(|customer| (*customer, 1.0));
    fit(SpendData::new(groups)?, options)
}

/// Like [`fit_gamma_gamma`] with a weight (count of identical customers, >= 0) per row.
pub fn fit_gamma_gamma_weighted(
    groups: &[(SpendSummary, f64)],
    options: &FitOptions,
) -> Result<GammaGammaFit> {
    fit(SpendData::new(groups.iter().copied())?, options)
}

fn fit(data: SpendData, options: &FitOptions) -> Result<GammaGammaFit> {
    options.validate(MODEL)?;
    // p = 1, q = 2 and v = the mean spend make the model's mean spend, p v / (q - 1),
    // equal the observed one.
    let start = [0.0, 2.0_f64.ln(), data.mean_monetary_value.ln()];
    let minimum = minimize(
        |log_params, gradient| data.objective(log_params, options.penalizer, gradient),
        start,
        options,
    )
    .check(MODEL, options, &start, ["p", "q", "v"])?;
    let [p, q, v] = minimum.point.map(f64::exp);
    let params = GammaGammaParams { p, q, v };
    Ok(GammaGammaFit {
        params,
        log_likelihood: data.log_likelihood(&params, None),
        customers: data.total_weight,
        one_time_buyers_skipped: data.skipped_weight,
        iterations: minimum.iterations,
        converged: minimum.converged,
    })
}

impl GammaGammaParams {
    /// Checks that every parameter is finite and positive.
    pub fn new(p: f64, q: f64, v: f64) -> Result<Self> {
        for (name, value) in [("p", p), ("q", q), ("v", v)] {
            check_parameter(MODEL, name, value)?;
        }
        Ok(Self { p, q, v })
    }

    /// Log-likelihood of the repeat customers among `customers` (frequency 0 is skipped).
    pub fn log_likelihood(&self, customers: &[SpendSummary]) -> Result<f64> {
        let data = SpendData::new(customers.iter().map(|customer| (*customer, 1.0)))?;
        Ok(data.log_likelihood(self, None))
    }

    /// Expected mean transaction value of a customer with this spend history (Fader &
    /// Hardie 2013, eq. 5), a weighted average of the population mean `p v / (q - 1)` and
    /// the customer's own mean:
    ///
    /// `E[M | p, q, v, m_x, x] = p (v + x m_x) / (p x + q - 1)`.
    ///
    /// With frequency 0 this is the population mean, which is finite only when q > 1.
    pub fn conditional_expected_average_spend(&self, customer: &SpendSummary) -> Result<f64> {
        customer.validate(MODEL, None)?;
        let x = customer.frequency;
        let denominator = self.p * x + self.q - 1.0;
        if denominator <= 0.0 {
            return Err(LtvError::InvalidArgument {
                model: MODEL,
                name: "q",
                value: self.q,
                requirement: "greater than 1 - p * frequency, else the expected spend is \
                              infinite (for one-time buyers: greater than 1)",
            });
        }
        let own_total = if x > 0.0 {
            x * customer.monetary_value
        } else {
            0.0
        };
        Ok(self.p * (self.v + own_total) / denominator)
    }
}

/// Repeat customers' spends, with per-frequency work shared.
#[derive(Debug)]
struct SpendData {
    frequencies: Vec<f64>,
    frequency_weights: Vec<f64>,
    rows: Vec<SpendRow>,
    total_weight: f64,
    skipped_weight: f64,
    mean_monetary_value: f64,
}

#[derive(Clone, Copy, Debug)]
struct SpendRow {
    frequency: u32,
    ln_monetary_value: f64,
    /// x · m_x, the customer's total spend.
    total_spend: f64,
    weight: f64,
}

impl SpendData {
    fn new(groups: impl Iterator<Item = (SpendSummary, f64)>) -> Result<Self> {
        let mut frequencies = ValueIndex::default();
        let mut rows = Vec::with_capacity(groups.size_hint().0);
        let (mut skipped_weight, mut weighted_spend) = (0.0, 0.0);
        for (position, (customer, weight)) in groups.enumerate() {
            customer.validate(MODEL, Some(position))?;
            check_weight(MODEL, position, weight)?;
            if customer.frequency == 0.0 {
                skipped_weight += weight;
            } else if weight > 0.0 {
                let SpendSummary {
                    frequency: x,
                    monetary_value: m,
                } = customer;
                weighted_spend += weight * m;
                rows.push(SpendRow {
                    frequency: frequencies.index_of(x),
                    ln_monetary_value: m.ln(),
                    total_spend: x * m,
                    weight,
                });
            }
        }
        if rows.is_empty() {
            return Err(LtvError::EmptyInput {
                model: MODEL,
                reason: "no customer with a positive weight has a repeat transaction \
                         (frequency > 0); the spend model learns only from repeat customers",
            });
        }
        let mut frequency_weights = vec![0.0; frequencies.values.len()];
        for row in &rows {
            frequency_weights[row.frequency as usize] += row.weight;
        }
        let total_weight: f64 = frequency_weights.iter().sum();
        Ok(Self {
            frequencies: frequencies.values,
            frequency_weights,
            rows,
            total_weight,
            skipped_weight,
            mean_monetary_value: weighted_spend / total_weight,
        })
    }

    /// Mean negative log-likelihood per customer plus the penalty, and its gradient with
    /// respect to (ln p, ln q, ln v).
    fn objective(&self, log_params: &[f64; 3], penalizer: f64, gradient: &mut [f64; 3]) -> f64 {
        let params = log_params.map(f64::exp);
        let [p, q, v] = params;
        let mut ll_gradient = [0.0; 3];
        let ll = self.log_likelihood(&GammaGammaParams { p, q, v }, Some(&mut ll_gradient));
        for i in 0..3 {
            let penalty = 2.0 * penalizer * params[i] * params[i];
            gradient[i] = -params[i] * ll_gradient[i] / self.total_weight + penalty;
        }
        let penalty: f64 = params.iter().map(|p| p * p).sum::<f64>() * penalizer;
        -ll / self.total_weight + penalty
    }

    /// Σ weight · ln f(m_x | p, q, v, x), the density of the mean spend in Fader & Hardie
    /// (2013), and, if asked, its
    /// gradient with respect to (p, q, v):
    ///
    /// `ln f = ln Γ(p x + q) - ln Γ(p x) - ln Γ(q) + q ln v + (p x - 1) ln m_x + p x ln x
    ///        - (p x + q) ln(v + x m_x)`.
    fn log_likelihood(&self, params: &GammaGammaParams, gradient: Option<&mut [f64; 3]>) -> f64 {
        let GammaGammaParams { p, q, v } = *params;
        let (ln_v, psi_q, ln_gamma_q) = (v.ln(), digamma(q), ln_gamma(q));
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        let per_frequency: Vec<f64> = self
            .frequencies
            .iter()
            .zip(&self.frequency_weights)
            .map(|(&x, &weight)| {
                let shape = p * x;
                let psi_total = digamma(shape + q);
                ll += weight
                    * (ln_gamma(shape + q) - ln_gamma(shape) - ln_gamma_q
                        + q * ln_v
                        + shape * x.ln());
                g[0] += weight * x * (psi_total - digamma(shape) + x.ln());
                g[1] += weight * (psi_total - psi_q + ln_v);
                g[2] += weight * q / v;
                shape
            })
            .collect();
        for row in &self.rows {
            let x = self.frequencies[row.frequency as usize];
            let shape = per_frequency[row.frequency as usize];
            let w = row.weight;
            let ln_total = (v + row.total_spend).ln();
            ll += w * ((shape - 1.0) * row.ln_monetary_value - (shape + q) * ln_total);
            g[0] += w * x * (row.ln_monetary_value - ln_total);
            g[1] -= w * ln_total;
            g[2] -= w * (shape + q) / (v + row.total_spend);
        }
        if let Some(gradient) = gradient {
            *gradient = g;
        }
        ll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::numeric_gradient;

    fn spend(frequency: f64, monetary_value: f64) -> SpendSummary {
        SpendSummary {
            frequency,
            monetary_value,
        }
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let rows = [
            (spend(1.0, 12.5), 2.0),
            (spend(2.0, 30.0), 1.0),
            (spend(5.0, 8.25), 1.0),
            (spend(1.0, 55.0), 0.5),
        ];
        let data = SpendData::new(rows.into_iter()).unwrap();
        for penalizer in [0.0, 0.05] {
            for log_params in [[0.0, 0.7, 2.0], [1.8, 1.3, 2.7], [-0.5, 0.1, 4.0]] {
                let objective = |x: &[f64; 3], g: &mut [f64; 3]| data.objective(x, penalizer, g);
                let mut analytic = [0.0; 3];
                objective(&log_params, &mut analytic);
                let numeric = numeric_gradient(objective, &log_params);
                for i in 0..3 {
                    let difference = (analytic[i] - numeric[i]).abs();
                    assert!(
                        difference < 1e-7 * analytic[i].abs().max(1.0),
                        "component {i} at {log_params:?}: {analytic:?} vs {numeric:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn likelihood_is_the_density_of_the_mean_spend() {
        // x = 1: m_1 ~ Gamma(p, ν) with ν ~ Gamma(q, v), a compound gamma whose density is
        // m^(p-1) v^q / (B(p, q) (v + m)^(p+q)).
        let (p, q, v, m) = (2.5, 3.0, 10.0, 4.0);
        let params = GammaGammaParams::new(p, q, v).unwrap();
        let ll = params.log_likelihood(&[spend(1.0, m)]).unwrap();
        let ln_beta = ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
        let expected = (p - 1.0) * m.ln() + q * v.ln() - ln_beta - (p + q) * (v + m).ln();
        assert!((ll - expected).abs() < 1e-12, "{ll} vs {expected}");
    }

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        let params = GammaGammaParams::new(6.0, 4.0, 15.0).unwrap();
        let population = params
            .conditional_expected_average_spend(&spend(0.0, 0.0))
            .unwrap();
        assert!((population - 6.0 * 15.0 / 3.0).abs() < 1e-12);
        let few = params
            .conditional_expected_average_spend(&spend(1.0, 100.0))
            .unwrap();
        let many = params
            .conditional_expected_average_spend(&spend(50.0, 100.0))
            .unwrap();
        assert!(
            population < few && few < many && many < 100.0,
            "{few} {many}"
        );
        let heavy_tailed = GammaGammaParams::new(1.0, 0.5, 15.0).unwrap();
        let error = heavy_tailed.conditional_expected_average_spend(&spend(0.0, 0.0));
        assert!(error.unwrap_err().to_string().contains("infinite"));
    }

    #[test]
    fn invalid_spends_are_explained() {
        let options = FitOptions::default();
        let refund = fit_gamma_gamma(&[spend(1.0, 10.0), spend(2.0, -5.0)], &options);
        let message = refund.unwrap_err().to_string();
        assert!(
            message.starts_with("Gamma-Gamma: row 1: monetary value is -5"),
            "{message}"
        );
        let zero = fit_gamma_gamma(&[spend(3.0, 0.0)], &options).unwrap_err();
        assert!(matches!(
            zero,
            LtvError::InvalidInput {
                problem: InputProblem::NonPositiveMonetaryValue { .. },
                ..
            }
        ));
        let nan = fit_gamma_gamma(&[spend(1.0, f64::NAN)], &options).unwrap_err();
        assert!(nan.to_string().contains("monetary value is NaN"), "{nan}");
        let one_time_only = fit_gamma_gamma(&[spend(0.0, 0.0)], &options).unwrap_err();
        assert!(matches!(one_time_only, LtvError::EmptyInput { .. }));
        assert!(fit_gamma_gamma(&[], &options).is_err());
    }
}
