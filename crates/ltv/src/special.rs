//! Special functions the likelihoods need, for positive arguments only.

/// ln Γ(x) for x > 0.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) - 1/x lifts x to 10 or
/// more, where the asymptotic series (Abramowitz & Stegun 6.3.18) is accurate to ~1e-14.
pub(crate) fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv2 = 1.0 / (x * x);
    // Bernoulli-number coefficients B_2k / 2k of 1/x^2k.
    let tail = inv2
        * (1.0 / 12.0
            - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))));
    shift + x.ln() - 0.5 / x - tail
}

#[cfg(test)]
mod tests {
    use super::*;

    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

    #[test]
    fn digamma_matches_known_values() {
        assert!((digamma(1.0) + EULER_GAMMA).abs() < 1e-13);
        let half = -EULER_GAMMA - 2.0 * std::f64::consts::LN_2;
        assert!((digamma(0.5) - half).abs() < 1e-13);
        // ψ(n + 1) = H_n - γ.
        let harmonic_20: f64 = (1..=20).map(|k| 1.0 / k as f64).sum();
        assert!((digamma(21.0) - (harmonic_20 - EULER_GAMMA)).abs() < 1e-13);
    }

    #[test]
    fn digamma_is_the_derivative_of_ln_gamma() {
        for x in [1e-3_f64, 0.07, 0.3, 1.7, 4.2, 9.9, 10.1, 55.0, 1234.5] {
            let h = 1e-5 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            let tolerance = 1e-7 * digamma(x).abs().max(1.0);
            assert!((digamma(x) - numeric).abs() < tolerance, "x = {x}");
        }
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }
}
