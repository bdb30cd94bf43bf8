//! Maximum-likelihood fitting: options shared by the models and a small BFGS minimiser.
//!
//! Why our own BFGS rather than a crate: the models have 3 or 4 parameters and exact
//! gradients, so a dense quasi-Newton method with a backtracking (Armijo) line search is
//! about a hundred lines, needs no dependency and allocates nothing per iteration.
//! Parameters are optimised as logarithms, so every step keeps them positive.

use crate::error::{LtvError, Model, Result};

/// Options of a maximum-likelihood fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// L2 penalty `penalizer * Σ θ²` on the parameters θ, added to the mean negative
    /// log-likelihood per customer, as the Python `lifetimes` library does (BG/NBD on time
    /// rescaled so that the largest age is 10, which makes the penalty independent of the
    /// time unit). 0 (the default) is plain maximum likelihood; a small value such as 0.001
    /// helps when the data hardly identify the model.
    pub penalizer: f64,
    /// Most quasi-Newton iterations before giving up.
    pub max_iterations: usize,
    /// Converged when every component of the gradient of the mean negative log-likelihood
    /// with respect to the log-parameters is at most this; or, when no step can lower the
    /// objective beyond rounding any more, at most 1e-5 (SciPy's default).
    pub gradient_tolerance: f64,
    /// When true (the default) a fit that did not converge is an error
    /// ([`LtvError::NotConverged`]); when false it is returned with `converged: false`.
    pub require_convergence: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            penalizer: 0.0,
            max_iterations: 500,
            gradient_tolerance: 1e-8,
            require_convergence: true,
        }
    }
}

impl FitOptions {
    pub(crate) fn validate(&self, model: Model) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(LtvError::InvalidArgument {
                model,
                name: "penalizer",
                value: self.penalizer,
                requirement: "a finite number >= 0",
            });
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return Err(LtvError::InvalidArgument {
                model,
                name: "gradient_tolerance",
                value: self.gradient_tolerance,
                requirement: "a finite number > 0",
            });
        }
        Ok(())
    }
}

/// Where the minimiser stopped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minimum<const N: usize> {
    pub point: [f64; N],
    pub iterations: usize,
    pub gradient_norm: f64,
    pub converged: bool,
}

/// A log-parameter this far from its start (e^15 ≈ 3·10^6-fold) is running off to the
/// edge of the parameter space, where the likelihood flattens and the gradient vanishes
/// without an optimum.
const EDGE: f64 = 15.0;

impl<const N: usize> Minimum<N> {
    /// Marks a minimum at the edge of the parameter space as not converged, and makes
    /// either an error when convergence is required.
    pub(crate) fn check(
        mut self,
        model: Model,
        options: &FitOptions,
        start: &[f64; N],
        names: [&'static str; N],
    ) -> Result<Self> {
        let runaway = (0..N).find(|&i| (self.point[i] - start[i]).abs() > EDGE);
        if let Some(i) = runaway {
            self.converged = false;
            if options.require_convergence {
                let towards = if self.point[i] > start[i] {
                    "infinity"
                } else {
                    "0"
                };
                return Err(LtvError::Degenerate {
                    model,
                    parameter: names[i],
                    towards,
                });
            }
        }
        if self.converged || !options.require_convergence {
            Ok(self)
        } else {
            Err(LtvError::NotConverged {
                model,
                iterations: self.iterations,
                gradient_norm: self.gradient_norm,
            })
        }
    }
}

/// Sufficient-decrease constant of the Armijo condition.
const ARMIJO: f64 = 1e-4;
/// Longest move of any log-parameter in one step: e^8 ≈ 3000-fold, so a wild first
/// step cannot overflow the likelihood.
const MAX_LOG_STEP: f64 = 8.0;
/// Relative size of the rounding noise in the objective's value: sums over up to
/// millions of customers of terms that cancel.
const ROUNDOFF: f64 = 1e-14;
/// When no step decreases the objective beyond rounding any more, a gradient this small
/// still counts as converged: it is SciPy's default BFGS tolerance.
const STALLED_GRADIENT_TOLERANCE: f64 = 1e-5;

/// Minimises `objective`, which returns f(x) and writes ∇f(x) into its second argument,
/// with BFGS from `start`.
pub(crate) fn minimize<const N: usize>(
    mut objective: impl FnMut(&[f64; N], &mut [f64; N]) -> f64,
    start: [f64; N],
    options: &FitOptions,
) -> Minimum<N> {
    let mut x = start;
    let mut gradient = [0.0; N];
    let mut value = objective(&x, &mut gradient);
    let mut inverse_hessian = identity::<N>();
    let mut fresh_hessian = true;
    let mut iterations = 0;
    let stop = |x: [f64; N], gradient: &[f64; N], iterations, converged| Minimum {
        point: x,
        iterations,
        gradient_norm: max_abs(gradient),
        converged,
    };
    if !value.is_finite() || !gradient.iter().all(|g| g.is_finite()) {
        return stop(x, &gradient, 0, false);
    }

    while iterations < options.max_iterations {
        if max_abs(&gradient) <= options.gradient_tolerance {
            return stop(x, &gradient, iterations, true);
        }
        iterations += 1;
        let mut direction = mat_vec(&inverse_hessian, &gradient).map(|v| -v);
        let mut slope = dot(&direction, &gradient);
        if slope >= 0.0 || !slope.is_finite() {
            // The curvature model went bad: fall back to steepest descent.
            inverse_hessian = identity();
            fresh_hessian = true;
            direction = gradient.map(|g| -g);
            slope = -dot(&gradient, &gradient);
        }
        let longest = max_abs(&direction);
        let mut step = if longest > MAX_LOG_STEP {
            MAX_LOG_STEP / longest
        } else {
            1.0
        };

        let mut next_gradient = [0.0; N];
        let first_step = step;
        let roundoff = ROUNDOFF * value.abs().max(1.0);
        let accepted = loop {
            let candidate: [f64; N] = std::array::from_fn(|i| x[i] + step * direction[i]);
            let candidate_value = objective(&candidate, &mut next_gradient);
            let finite = candidate_value.is_finite() && next_gradient.iter().all(|g| g.is_finite());
            let decrease = value - candidate_value;
            // A decrease within rounding is noise, not progress.
            let sufficient = decrease > roundoff && decrease >= -ARMIJO * step * slope;
            // Near the optimum f stops resolving steps but the gradient still does: take
            // a full quasi-Newton step that leaves f unchanged and halves the gradient.
            let closer = step == first_step
                && decrease.abs() <= roundoff
                && max_abs(&next_gradient) < 0.5 * max_abs(&gradient);
            if finite && (sufficient || closer) {
                break Some((candidate, candidate_value));
            }
            if step < 1e-20 {
                break None;
            }
            // Minimiser of the quadratic through f(0), f'(0) and f(step), kept within
            // [0.1, 0.5] of the step so that the search neither stalls nor overshoots.
            let quadratic = -slope * step / (2.0 * (candidate_value - value - slope * step));
            step *= if finite && !quadratic.is_nan() {
                quadratic.clamp(0.1, 0.5)
            } else {
                0.1
            };
        };

        let Some((next_x, next_value)) = accepted else {
            if fresh_hessian {
                let converged = max_abs(&gradient) <= STALLED_GRADIENT_TOLERANCE;
                return stop(x, &gradient, iterations, converged);
            }
            inverse_hessian = identity();
            fresh_hessian = true;
            continue;
        };

        let s: [f64; N] = std::array::from_fn(|i| next_x[i] - x[i]);
        let y: [f64; N] = std::array::from_fn(|i| next_gradient[i] - gradient[i]);
        let sy = dot(&s, &y);
        // Skipping the update when the curvature condition fails keeps H positive definite.
        if sy > 1e-12 * norm(&s) * norm(&y) {
            if fresh_hessian {
                // Shanno-Phua scaling of the first matrix to the curvature just seen.
                let scale = sy / dot(&y, &y);
                inverse_hessian = identity::<N>().map(|row| row.map(|v| v * scale));
                fresh_hessian = false;
            }
            bfgs_update(&mut inverse_hessian, &s, &y, sy);
        }
        x = next_x;
        value = next_value;
        gradient = next_gradient;
    }
    let converged = max_abs(&gradient) <= options.gradient_tolerance;
    stop(x, &gradient, iterations, converged)
}

/// H ← (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ with ρ = 1 / (sᵀy).
fn bfgs_update<const N: usize>(h: &mut [[f64; N]; N], s: &[f64; N], y: &[f64; N], sy: f64) {
    let rho = 1.0 / sy;
    let hy = mat_vec(h, y);
    let yhy = dot(y, &hy);
    for i in 0..N {
        for j in 0..N {
            h[i][j] += rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
        }
    }
}

fn identity<const N: usize>() -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| if i == j { 1.0 } else { 0.0 }))
}

fn mat_vec<const N: usize>(m: &[[f64; N]; N], v: &[f64; N]) -> [f64; N] {
    std::array::from_fn(|i| dot(&m[i], v))
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm<const N: usize>(v: &[f64; N]) -> f64 {
    dot(v, v).sqrt()
}

fn max_abs<const N: usize>(v: &[f64; N]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Central finite differences of `objective`'s value, to check analytic gradients.
#[cfg(test)]
pub(crate) fn numeric_gradient<const N: usize>(
    mut objective: impl FnMut(&[f64; N], &mut [f64; N]) -> f64,
    x: &[f64; N],
) -> [f64; N] {
    let mut unused = [0.0; N];
    std::array::from_fn(|i| {
        let h = 1e-6 * x[i].abs().max(1.0);
        let mut up = *x;
        up[i] += h;
        let mut down = *x;
        down[i] -= h;
        (objective(&up, &mut unused) - objective(&down, &mut unused)) / (2.0 * h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana valley: a hard, well-known test of quasi-Newton methods.
    fn rosenbrock(x: &[f64; 2], gradient: &mut [f64; 2]) -> f64 {
        let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
        gradient[0] = -2.0 * a - 400.0 * x[0] * b;
        gradient[1] = 200.0 * b;
        a * a + 100.0 * b * b
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let minimum = minimize(rosenbrock, [-1.2, 1.0], &FitOptions::default());
        assert!(minimum.converged, "{minimum:?}");
        assert!((minimum.point[0] - 1.0).abs() < 1e-6, "{minimum:?}");
        assert!((minimum.point[1] - 1.0).abs() < 1e-6, "{minimum:?}");
    }

    #[test]
    fn reports_no_convergence_when_out_of_iterations() {
        let options = FitOptions {
            max_iterations: 3,
            ..FitOptions::default()
        };
        let minimum = minimize(rosenbrock, [-1.2, 1.0], &options);
        assert!(!minimum.converged);
        assert_eq!(minimum.iterations, 3);
        let error = minimum.check(Model::BgNbd, &options, &[-1.2, 1.0], ["x", "y"]);
        assert!(matches!(
            error,
            Err(LtvError::NotConverged { iterations: 3, .. })
        ));
    }

    #[test]
    fn a_runaway_parameter_is_not_an_optimum() {
        // e^-x has no minimum: x runs off to infinity while the gradient vanishes.
        let vanishing = |x: &[f64; 1], gradient: &mut [f64; 1]| {
            gradient[0] = -(-x[0]).exp();
            (-x[0]).exp()
        };
        let minimum = minimize(vanishing, [0.0], &FitOptions::default());
        let error = minimum.check(Model::GammaGamma, &FitOptions::default(), &[0.0], ["q"]);
        let message = error.unwrap_err().to_string();
        assert!(message.starts_with("Gamma-Gamma: the best fit drives q towards infinity"));
        let lenient = FitOptions {
            require_convergence: false,
            ..FitOptions::default()
        };
        let minimum = minimum
            .check(Model::GammaGamma, &lenient, &[0.0], ["q"])
            .unwrap();
        assert!(!minimum.converged);
    }

    #[test]
    fn numeric_gradient_agrees_with_rosenbrock() {
        let x = [0.3, -0.7];
        let mut analytic = [0.0; 2];
        rosenbrock(&x, &mut analytic);
        let numeric = numeric_gradient(rosenbrock, &x);
        for i in 0..2 {
            assert!((analytic[i] - numeric[i]).abs() < 1e-6 * analytic[i].abs().max(1.0));
        }
    }
}
