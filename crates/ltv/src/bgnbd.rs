//! BG/NBD: the beta-geometric / negative-binomial model of repeat purchases of
//! Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
//! Pareto/NBD Model", Marketing Science 24(2), 275-284 (FHL below).
//!
//! While alive a customer buys at Poisson rate λ ~ Gamma(r, α); after each purchase they
//! drop out with probability p ~ Beta(a, b).

use crate::error::{InputProblem, LtvError, Model, Result};
use crate::input::{
    ValueIndex, check_duration, check_frequency, check_non_negative, check_parameter, check_weight,
    invalid,
};
use crate::optimize::{FitOptions, minimize};
use crate::special::{digamma, ln_gamma};

const MODEL: Model = Model::BgNbd;

/// One customer's purchase history, the BG/NBD input. All times are in one unit of the
/// caller's choosing (the marts use days) and are measured from the first purchase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomerSummary {
    /// x: the number of repeat purchases (or repeat purchase periods, e.g. days with a
    /// purchase, after the first).
    pub frequency: f64,
    /// t_x: the age at the last purchase; 0 when `frequency` is 0.
    pub recency: f64,
    /// T: the age at the end of the observation period.
    pub age: f64,
}

impl CustomerSummary {
    /// Checks the definitions: finite, non-negative, whole frequency, recency ≤ age and
    /// recency 0 without repeat purchases.
    pub fn validate(&self, model: Model, row: Option<usize>) -> Result<()> {
        check_frequency(model, row, self.frequency)?;
        check_non_negative(model, row, "recency", self.recency)?;
        check_non_negative(model, row, "age (T)", self.age)?;
        if self.recency > self.age {
            let (recency, age) = (self.recency, self.age);
            return Err(invalid(
                model,
                row,
                InputProblem::RecencyAfterAge { recency, age },
            ));
        }
        if self.frequency == 0.0 && self.recency != 0.0 {
            let recency = self.recency;
            return Err(invalid(
                model,
                row,
                InputProblem::RecencyWithoutRepeat { recency },
            ));
        }
        Ok(())
    }
}

/// Parameters of the BG/NBD model: purchase rate λ ~ Gamma(shape `r`, rate `alpha`) and
/// drop-out probability p ~ Beta(`a`, `b`). `alpha` is in the time unit of the data.
/// Build them with [`BgNbdParams::new`], which checks them, or take them from a fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted BG/NBD model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbdFit {
    pub params: BgNbdParams,
    /// Log-likelihood of the data at `params` (FHL eq. 6 summed over customers, in the
    /// data's time unit, without the penalty).
    pub log_likelihood: f64,
    /// Number of customers fitted (the sum of the weights).
    pub customers: f64,
    /// Distinct (frequency, recency, age) triples the likelihood was evaluated on.
    pub distinct_histories: usize,
    pub iterations: usize,
    pub converged: bool,
}

/// Fits BG/NBD by maximum likelihood (FHL eq. 6) to one row per customer.
///
/// Identical histories are grouped before fitting, so the cost grows with the number of
/// distinct (frequency, recency, age) triples rather than customers.
pub fn fit_bgnbd(customers: &[CustomerSummary], options: &FitOptions) -> Result<BgNbdFit> {
    let groups = customers.iter().map(|customer| (*customer, 1.0));
    fit(FitData::new(groups)?, options)
}

/// Like [`fit_bgnbd`] for grouped input: each customer history comes with the number of
/// customers who share it (a weight >= 0; a fractional weight is allowed).
pub fn fit_bgnbd_weighted(
    groups: &[(CustomerSummary, f64)],
    options: &FitOptions,
) -> Result<BgNbdFit> {
    fit(FitData::new(groups.iter().copied())?, options)
}

fn fit(mut data: FitData, options: &FitOptions) -> Result<BgNbdFit> {
    options.validate(MODEL)?;
    let largest_age = data.ages.iter().fold(0.0_f64, |m, &age| m.max(age));
    if largest_age <= 0.0 {
        return Err(LtvError::EmptyInput {
            model: MODEL,
            reason: "every customer has age (T) 0, so nothing has been observed yet",
        });
    }
    // As in `lifetimes`: fitting with the largest age at 10 keeps alpha near 1 whatever
    // the time unit, and makes the penalizer mean the same in days or weeks.
    let time_scale = 10.0 / largest_age;
    data.rescale_time(time_scale);

    let start = [0.0; 4];
    let minimum = minimize(
        |log_params, gradient| data.objective(log_params, options.penalizer, gradient),
        start,
        options,
    )
    .check(MODEL, options, &start, ["r", "alpha", "a", "b"])?;

    let [r, scaled_alpha, a, b] = minimum.point.map(f64::exp);
    let scaled = BgNbdParams {
        r,
        alpha: scaled_alpha,
        a,
        b,
    };
    // With times multiplied by s the likelihood of x purchases is multiplied by s^-x.
    let log_likelihood =
        data.log_likelihood(&scaled, None) + data.total_frequency * time_scale.ln();
    Ok(BgNbdFit {
        params: BgNbdParams {
            alpha: scaled_alpha / time_scale,
            ..scaled
        },
        log_likelihood,
        customers: data.total_weight,
        distinct_histories: data.rows.len(),
        iterations: minimum.iterations,
        converged: minimum.converged,
    })
}

impl BgNbdParams {
    /// Checks that every parameter is finite and positive.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        for (name, value) in [("r", r), ("alpha", alpha), ("a", a), ("b", b)] {
            check_parameter(MODEL, name, value)?;
        }
        Ok(Self { r, alpha, a, b })
    }

    /// Log-likelihood of `customers` under these parameters (FHL eq. 6, summed).
    pub fn log_likelihood(&self, customers: &[CustomerSummary]) -> Result<f64> {
        let data = FitData::new(customers.iter().map(|customer| (*customer, 1.0)))?;
        Ok(data.log_likelihood(self, None))
    }

    /// Probability that a customer with this history is still alive at the end of the
    /// observation (Fader, Hardie & Lee 2008, "Computing P(alive) Using the BG/NBD Model",
    /// note 021 on brucehardie.com):
    /// `1 / (1 + [x > 0] · a / (b + x - 1) · ((α + T) / (α + t_x))^(r + x))`.
    pub fn p_alive(&self, customer: &CustomerSummary) -> Result<f64> {
        customer.validate(MODEL, None)?;
        Ok(1.0 / self.dead_odds_denominator(customer))
    }

    /// Expected number of purchases in the next `horizon` time units by a customer with
    /// this history, FHL eq. 10:
    ///
    /// `E[Y(t) | x, t_x, T] = (a + b + x - 1) / (a - 1)
    ///     · [1 - ((α + T) / (α + T + t))^(r + x) · ₂F₁(r + x, b + x; a + b + x - 1; t / (α + T + t))]
    ///     / (1 + [x > 0] · a / (b + x - 1) · ((α + T) / (α + t_x))^(r + x))`.
    pub fn conditional_expected_purchases(
        &self,
        horizon: f64,
        customer: &CustomerSummary,
    ) -> Result<f64> {
        customer.validate(MODEL, None)?;
        check_duration(MODEL, "horizon", horizon)?;
        let numerator = self.eq10_numerator(customer.frequency, customer.age, horizon)?;
        Ok(numerator / self.dead_odds_denominator(customer))
    }

    /// Expected number of repeat purchases of a new customer in their first `horizon`
    /// time units, FHL eq. 9:
    /// `E[X(t)] = (a + b - 1) / (a - 1) · [1 - (α / (α + t))^r · ₂F₁(r, b; a + b - 1; t / (α + t))]`.
    pub fn expected_purchases(&self, horizon: f64) -> Result<f64> {
        check_duration(MODEL, "horizon", horizon)?;
        // Eq. 9 is eq. 10's numerator for a customer seen for no time at all.
        self.eq10_numerator(0.0, 0.0, horizon)
    }

    /// `1 + [x > 0] · a / (b + x - 1) · ((α + T) / (α + t_x))^(r + x)`, 1 / P(alive).
    fn dead_odds_denominator(&self, customer: &CustomerSummary) -> f64 {
        let CustomerSummary {
            frequency: x,
            recency,
            age,
        } = *customer;
        if x == 0.0 {
            return 1.0;
        }
        let growth = ((age - recency) / (self.alpha + recency)).ln_1p();
        let ln_odds = self.a.ln() - (self.b + x - 1.0).ln() + (self.r + x) * growth;
        1.0 + ln_odds.exp()
    }

    /// The numerator of FHL eq. 10, `C / (a - 1) · [1 - (1 - z)^(r + x) · ₂F₁(r + x, b + x; C; z)]`
    /// with `C = a + b + x - 1` and `z = t / (α + T + t)`.
    ///
    /// Evaluated without ₂F₁ at large arguments: Euler's transformation (DLMF 15.8.1) gives
    /// `(1 - z)^(r + x) ₂F₁(r + x, b + x; C; z) = (1 - z)^(a - 1) ₂F₁(C - r - x, a - 1; C; z)`,
    /// whose series, written `1 + (a - 1) S / C`, turns the bracket into
    /// `C · (1 - (1 - z)^(a - 1)) / (a - 1) - (1 - z)^(a - 1) · S` with
    /// `S = Σ_{k≥1} (d)_k (a)_{k-1} z^k / ((C + 1)_{k-1} k!)`, `d = a + b - 1 - r`.
    /// This form has no pole at a = 1 or C = 0, and its terms shrink like
    /// `k^(a - r - x - 2) z^k`, fast even for z near 1 once x ≥ 1 (the direct series' terms
    /// grow like `k^(r + x - a) z^k`).
    fn eq10_numerator(&self, x: f64, age: f64, horizon: f64) -> Result<f64> {
        let BgNbdParams { r, alpha, a, b } = *self;
        let c = a + b + x - 1.0;
        let z = horizon / (alpha + age + horizon);
        let ln_one_minus_z = -(horizon / (alpha + age)).ln_1p();
        let shifted = a - 1.0;
        let first = if shifted == 0.0 {
            -ln_one_minus_z
        } else {
            -(shifted * ln_one_minus_z).exp_m1() / shifted
        };
        let weight = (shifted * ln_one_minus_z).exp();
        let series = euler_series(a + b - 1.0 - r, a, c, z, c * first / weight)?;
        Ok(c * first - weight * series)
    }
}

/// Most terms of the series in [`BgNbdParams::eq10_numerator`] before giving up: z is at
/// most 1 - 1e-5 there for any horizon up to 10^5 times α + T.
const MAX_SERIES_TERMS: usize = 10_000_000;

/// `S = Σ_{k≥1} (d)_k (a)_{k-1} z^k / ((c + 1)_{k-1} k!)` for a > 0, c > -1, 0 ≤ z < 1,
/// to relative accuracy ~1e-15 of `|S| + scale`.
fn euler_series(d: f64, a: f64, c: f64, z: f64, scale: f64) -> Result<f64> {
    let mut term = d * z;
    let mut sum = term;
    // e and f of term_{k+1} / term_k = z · (1 + (e k + f) / ((c + k)(k + 1))).
    let e_plus = (d + a - c - 2.0).max(0.0);
    let f_plus = (d * (a - 1.0) - c).max(0.0);
    let signs_settle = d.abs() + 1.0;
    for k in 1..MAX_SERIES_TERMS {
        let k = k as f64;
        term *= (d + k) * (a - 1.0 + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        // `term` is now term_{k+1}. Once every factor is positive, each later ratio
        // term_{j+1} / term_j (j > k) is at most the one below, since c + j ≥ j - 1 and
        // the bound decreases in j: the rest of the series is under a geometric tail.
        if k > signs_settle {
            let ratio_bound = z * (1.0 + (e_plus * (k + 1.0) + f_plus) / (k * (k + 2.0)));
            if ratio_bound < 1.0
                && term.abs() * ratio_bound / (1.0 - ratio_bound)
                    <= 1e-15 * (sum.abs() + scale.abs())
            {
                return Ok(sum);
            }
        }
        if term == 0.0 {
            return Ok(sum);
        }
    }
    Err(LtvError::SeriesNotConverged {
        model: MODEL,
        terms: MAX_SERIES_TERMS,
        z,
    })
}

/// Customer histories grouped into distinct triples, stored as indices into tables of
/// distinct frequencies and ages so that each likelihood evaluation takes one logarithm
/// per distinct age and one ln-gamma per distinct frequency.
#[derive(Debug)]
struct FitData {
    frequencies: Vec<f64>,
    /// Total weight of the customers with each distinct frequency.
    frequency_weights: Vec<f64>,
    /// Distinct values of both recency and age.
    ages: Vec<f64>,
    rows: Vec<Row>,
    total_weight: f64,
    /// Σ weight · frequency.
    total_frequency: f64,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    frequency: u32,
    recency: u32,
    age: u32,
    weight: f64,
}

impl Row {
    fn key(&self) -> (u32, u32, u32) {
        (self.frequency, self.recency, self.age)
    }
}

impl FitData {
    fn new(groups: impl Iterator<Item = (CustomerSummary, f64)>) -> Result<Self> {
        let mut frequencies = ValueIndex::default();
        let mut ages = ValueIndex::default();
        let mut rows = Vec::with_capacity(groups.size_hint().0);
        for (position, (customer, weight)) in groups.enumerate() {
            customer.validate(MODEL, Some(position))?;
            check_weight(MODEL, position, weight)?;
            if weight > 0.0 {
                rows.push(Row {
                    frequency: frequencies.index_of(customer.frequency),
                    recency: ages.index_of(customer.recency),
                    age: ages.index_of(customer.age),
                    weight,
                });
            }
        }
        if rows.is_empty() {
            return Err(LtvError::EmptyInput {
                model: MODEL,
                reason: "the input has no customer with a positive weight",
            });
        }
        // Sorting (rather than hashing) makes the grouped order, hence the floating-point
        // sums and the fit, identical from run to run.
        rows.sort_unstable_by_key(Row::key);
        rows.dedup_by(|next, kept| {
            let same = next.key() == kept.key();
            if same {
                kept.weight += next.weight;
            }
            same
        });
        let mut frequency_weights = vec![0.0; frequencies.values.len()];
        for row in &rows {
            frequency_weights[row.frequency as usize] += row.weight;
        }
        let total_weight = frequency_weights.iter().sum();
        let total_frequency = frequencies
            .values
            .iter()
            .zip(&frequency_weights)
            .map(|(x, w)| x * w)
            .sum();
        Ok(Self {
            frequencies: frequencies.values,
            frequency_weights,
            ages: ages.values,
            rows,
            total_weight,
            total_frequency,
        })
    }

    fn rescale_time(&mut self, scale: f64) {
        for age in &mut self.ages {
            *age *= scale;
        }
    }

    /// Mean negative log-likelihood per customer plus the penalty, and its gradient with
    /// respect to the log-parameters (ln r, ln α, ln a, ln b).
    fn objective(&self, log_params: &[f64; 4], penalizer: f64, gradient: &mut [f64; 4]) -> f64 {
        let params = log_params.map(f64::exp);
        let [r, alpha, a, b] = params;
        let mut ll_gradient = [0.0; 4];
        let ll = self.log_likelihood(&BgNbdParams { r, alpha, a, b }, Some(&mut ll_gradient));
        for i in 0..4 {
            // d/d(ln θ) = θ · d/dθ.
            let penalty = 2.0 * penalizer * params[i] * params[i];
            gradient[i] = -params[i] * ll_gradient[i] / self.total_weight + penalty;
        }
        let penalty: f64 = params.iter().map(|p| p * p).sum::<f64>() * penalizer;
        -ll / self.total_weight + penalty
    }

    /// Σ weight · ln L (FHL eq. 6, in the form of Fader & Hardie's note 004, which
    /// `lifetimes` also uses) and, if asked, its gradient with respect to (r, α, a, b):
    ///
    /// `ln L = ln Γ(r + x) - ln Γ(r) + r ln α + ln B(a, b + x) - ln B(a, b)
    ///        + ln[(α + T)^-(r+x) + [x > 0] · a / (b + x - 1) · (α + t_x)^-(r+x)]`.
    fn log_likelihood(&self, params: &BgNbdParams, gradient: Option<&mut [f64; 4]>) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *params;
        let (ln_alpha, psi_r, psi_b, psi_ab) = (alpha.ln(), digamma(r), digamma(b), digamma(a + b));
        let constant = -ln_gamma(r) + ln_gamma(a + b) - ln_gamma(b);
        let mut ll = 0.0;
        let mut g = [0.0; 4];

        // Terms that depend on the frequency only.
        let per_frequency: Vec<FrequencyTerms> = self
            .frequencies
            .iter()
            .zip(&self.frequency_weights)
            .map(|(&x, &weight)| {
                ll += weight
                    * (ln_gamma(r + x) + constant + r * ln_alpha + ln_gamma(b + x)
                        - ln_gamma(a + b + x));
                let psi_abx = digamma(a + b + x);
                g[0] += weight * (digamma(r + x) - psi_r + ln_alpha);
                g[1] += weight * r / alpha;
                g[2] += weight * (psi_ab - psi_abx);
                g[3] += weight * (psi_ab + digamma(b + x) - psi_b - psi_abx);
                FrequencyTerms {
                    repeat: x > 0.0,
                    exponent: r + x,
                    ln_odds: a.ln() - (b + x - 1.0).ln(),
                    inverse_b: 1.0 / (b + x - 1.0),
                }
            })
            .collect();
        // ln(α + age) and 1 / (α + age) for each distinct age.
        let per_age: Vec<(f64, f64)> = self
            .ages
            .iter()
            .map(|&age| ((alpha + age).ln(), 1.0 / (alpha + age)))
            .collect();

        for row in &self.rows {
            let terms = &per_frequency[row.frequency as usize];
            let (ln_age, inv_age) = per_age[row.age as usize];
            let w = row.weight;
            let n = terms.exponent;
            let at_end = -n * ln_age;
            if !terms.repeat {
                ll += w * at_end;
                g[0] -= w * ln_age;
                g[1] -= w * n * inv_age;
                continue;
            }
            // ln(e^at_end + e^at_last), with weights share_end + share_last = 1.
            let (ln_recency, inv_recency) = per_age[row.recency as usize];
            let at_last = terms.ln_odds - n * ln_recency;
            let larger = at_end.max(at_last);
            let ratio = (-(at_end - at_last).abs()).exp();
            ll += w * (larger + ratio.ln_1p());
            let small_share = ratio / (1.0 + ratio);
            let (share_end, share_last) = if at_end >= at_last {
                (1.0 - small_share, small_share)
            } else {
                (small_share, 1.0 - small_share)
            };
            g[0] -= w * (share_end * ln_age + share_last * ln_recency);
            g[1] -= w * n * (share_end * inv_age + share_last * inv_recency);
            g[2] += w * share_last / a;
            g[3] -= w * share_last * terms.inverse_b;
        }
        if let Some(gradient) = gradient {
            *gradient = g;
        }
        ll
    }
}

struct FrequencyTerms {
    repeat: bool,
    /// r + x.
    exponent: f64,
    /// ln(a / (b + x - 1)), used only when `repeat`.
    ln_odds: f64,
    /// 1 / (b + x - 1), used only when `repeat`.
    inverse_b: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::numeric_gradient;

    fn customer(frequency: f64, recency: f64, age: f64) -> CustomerSummary {
        CustomerSummary {
            frequency,
            recency,
            age,
        }
    }

    fn sample() -> FitData {
        let histories = [
            (customer(0.0, 0.0, 10.0), 5.0),
            (customer(0.0, 0.0, 3.5), 2.0),
            (customer(1.0, 2.0, 10.0), 1.0),
            (customer(3.0, 9.5, 10.0), 1.5),
            (customer(7.0, 6.0, 8.0), 1.0),
            (customer(2.0, 8.0, 8.0), 1.0),
        ];
        FitData::new(histories.into_iter()).unwrap()
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let data = sample();
        for penalizer in [0.0, 0.1] {
            for log_params in [[0.0; 4], [-1.4, 1.5, -0.2, 0.9], [0.7, -0.5, 1.2, -1.0]] {
                let objective = |x: &[f64; 4], g: &mut [f64; 4]| data.objective(x, penalizer, g);
                let mut analytic = [0.0; 4];
                objective(&log_params, &mut analytic);
                let numeric = numeric_gradient(objective, &log_params);
                for i in 0..4 {
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
    fn identical_histories_are_grouped() {
        let data = FitData::new(
            [
                (customer(0.0, 0.0, 4.0), 1.0),
                (customer(2.0, 1.0, 4.0), 1.0),
                (customer(0.0, -0.0, 4.0), 2.0),
                (customer(2.0, 1.0, 4.0), 0.5),
                (customer(2.0, 1.0, 5.0), 0.0),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(data.rows.len(), 2);
        assert_eq!(data.total_weight, 4.5);
        assert_eq!(data.total_frequency, 3.0);
        let weights: Vec<f64> = data.rows.iter().map(|row| row.weight).collect();
        assert_eq!(weights, [3.0, 1.5]);
    }

    #[test]
    fn one_time_buyer_likelihood_is_the_closed_form() {
        // With x = 0 only the first term of eq. 6 is left:
        // L = B(a, b) / B(a, b) · Γ(r) α^r / (Γ(r) (α + T)^r) = (α / (α + T))^r.
        let params = BgNbdParams::new(0.5, 2.0, 0.8, 2.4).unwrap();
        let ll = params.log_likelihood(&[customer(0.0, 0.0, 6.0)]).unwrap();
        assert!((ll - 0.5 * (2.0_f64 / 8.0).ln()).abs() < 1e-14);
    }

    #[test]
    fn one_time_buyers_are_certainly_alive_and_buy_like_newcomers() {
        let params = BgNbdParams::new(0.24, 4.4, 0.79, 2.43).unwrap();
        let newcomer = customer(0.0, 0.0, 0.0);
        assert_eq!(params.p_alive(&customer(0.0, 0.0, 30.0)).unwrap(), 1.0);
        let conditional = params
            .conditional_expected_purchases(39.0, &newcomer)
            .unwrap();
        let unconditional = params.expected_purchases(39.0).unwrap();
        assert!((conditional - unconditional).abs() < 1e-14 * unconditional);
        assert_eq!(params.expected_purchases(0.0).unwrap(), 0.0);
    }

    /// Direct Gauss series of ₂F₁ for z ≤ 1/2, where it converges fast with positive terms.
    fn hyp2f1_direct(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let (mut term, mut sum) = (1.0, 1.0);
        for k in 0..2000 {
            let k = k as f64;
            term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
            sum += term;
        }
        sum
    }

    #[test]
    fn eq10_numerator_agrees_with_the_textbook_formula() {
        for (r, alpha, a, b) in [
            (0.24, 4.4, 0.79, 2.43),
            (1.3, 0.5, 3.2, 0.4),
            (0.6, 12.0, 1.0 + 1e-4, 1.5),
            (0.2, 1.0, 0.3, 0.5),
        ] {
            let params = BgNbdParams::new(r, alpha, a, b).unwrap();
            for (x, age, horizon) in [(0.0, 10.0, 5.0), (2.0, 38.86, 39.0), (9.0, 20.0, 15.0)] {
                let z = horizon / (alpha + age + horizon);
                assert!(z <= 0.5);
                let c = a + b + x - 1.0;
                let hypergeometric = hyp2f1_direct(r + x, b + x, c, z);
                let textbook = c / (a - 1.0) * (1.0 - (1.0 - z).powf(r + x) * hypergeometric);
                let ours = params.eq10_numerator(x, age, horizon).unwrap();
                // Near a = 1 the textbook form cancels away ~4 digits; ours does not.
                let tolerance = if (a - 1.0).abs() < 1e-3 { 1e-9 } else { 1e-12 };
                assert!(
                    (ours - textbook).abs() < tolerance * textbook.abs(),
                    "{params:?} x={x} T={age} t={horizon}: {ours} vs {textbook}"
                );
            }
        }
    }

    #[test]
    fn eq10_numerator_is_continuous_through_a_equal_1() {
        let at = |a: f64| {
            let params = BgNbdParams::new(0.6, 12.0, a, 1.5).unwrap();
            params.eq10_numerator(2.0, 38.86, 39.0).unwrap()
        };
        let exactly_one = at(1.0);
        for a in [1.0 - 1e-9, 1.0 + 1e-12, 1.0 + 1e-9] {
            assert!((at(a) - exactly_one).abs() < 1e-8 * exactly_one, "a = {a}");
        }
    }

    #[test]
    fn long_horizons_converge_and_grow() {
        let params = BgNbdParams::new(0.24, 4.4, 0.79, 2.43).unwrap();
        let mut previous = 0.0;
        for horizon in [10.0, 1e2, 1e3, 1e4, 1e5] {
            let expected = params.expected_purchases(horizon).unwrap();
            assert!(expected > previous, "{horizon}: {expected}");
            previous = expected;
            let regular = customer(20.0, 30.0, 31.0);
            assert!(
                params
                    .conditional_expected_purchases(horizon, &regular)
                    .unwrap()
                    > 0.0
            );
        }
    }

    #[test]
    fn invalid_histories_are_explained() {
        let params = BgNbdParams::new(0.24, 4.4, 0.79, 2.43).unwrap();
        let cases = [
            (customer(-1.0, 0.0, 5.0), "frequency is -1"),
            (customer(1.5, 2.0, 5.0), "whole number"),
            (customer(1.0, 6.0, 5.0), "greater than age"),
            (
                customer(0.0, 2.0, 5.0),
                "not the time since the last purchase",
            ),
            (customer(1.0, f64::NAN, 5.0), "recency is NaN"),
            (customer(1.0, 1.0, f64::INFINITY), "age (T) is inf"),
        ];
        for (history, expected) in cases {
            let message = params.p_alive(&history).unwrap_err().to_string();
            assert!(message.starts_with("BG/NBD: "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let fitted = fit_bgnbd(
            &[customer(0.0, 0.0, 5.0), customer(2.0, 7.0, 5.0)],
            &FitOptions::default(),
        );
        let message = fitted.unwrap_err().to_string();
        assert!(message.starts_with("BG/NBD: row 1: recency 7"), "{message}");
        assert!(params.expected_purchases(-1.0).is_err());
        assert!(BgNbdParams::new(0.0, 1.0, 1.0, 1.0).is_err());
    }

    #[test]
    fn too_little_data_is_degenerate_not_converged() {
        // Five customers: the likelihood keeps rising as a and b shrink towards 0.
        let customers = [
            customer(0.0, 0.0, 38.9),
            customer(2.0, 30.4, 38.9),
            customer(1.0, 1.7, 38.9),
            customer(5.0, 20.0, 25.0),
            customer(0.0, 0.0, 12.0),
        ];
        let error = fit_bgnbd(&customers, &FitOptions::default()).unwrap_err();
        assert!(
            matches!(error, LtvError::Degenerate { towards: "0", .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("the data do not identify the model")
        );
        let lenient = FitOptions {
            require_convergence: false,
            ..FitOptions::default()
        };
        assert!(!fit_bgnbd(&customers, &lenient).unwrap().converged);
    }

    #[test]
    fn empty_or_unobserved_input_is_an_error() {
        let options = FitOptions::default();
        let empty = fit_bgnbd(&[], &options).unwrap_err();
        assert!(matches!(empty, LtvError::EmptyInput { .. }), "{empty}");
        let weightless = fit_bgnbd_weighted(&[(customer(0.0, 0.0, 3.0), 0.0)], &options);
        assert!(matches!(weightless, Err(LtvError::EmptyInput { .. })));
        let unobserved = fit_bgnbd(&[customer(0.0, 0.0, 0.0)], &options).unwrap_err();
        assert!(unobserved.to_string().contains("age (T) 0"), "{unobserved}");
        let negative_weight = fit_bgnbd_weighted(&[(customer(0.0, 0.0, 3.0), -1.0)], &options);
        assert!(
            negative_weight
                .unwrap_err()
                .to_string()
                .contains("weight is -1")
        );
    }
}
