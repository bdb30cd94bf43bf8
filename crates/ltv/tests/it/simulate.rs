//! Customer bases drawn from the models themselves, to test parameter recovery and speed.

use cdphub_ltv::{BgNbdParams, CustomerSummary, GammaGammaParams, SpendSummary};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

pub struct Simulator {
    rng: Pcg64,
}

impl Simulator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Pcg64::seed_from_u64(seed),
        }
    }

    fn uniform(&mut self) -> f64 {
        // (0, 1]: never 0, so logarithms stay finite.
        1.0 - self.rng.random::<f64>()
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), boosted for shape < 1.
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    fn beta(&mut self, a: f64, b: f64) -> f64 {
        let g = self.gamma(a);
        g / (g + self.gamma(b))
    }

    /// One BG/NBD customer observed for `age` time units after their first purchase
    /// (the generative process of FHL 2005, as in `lifetimes.generate_data`).
    pub fn customer(&mut self, params: &BgNbdParams, age: f64) -> CustomerSummary {
        let rate = self.gamma(params.r) / params.alpha;
        let dropout = self.beta(params.a, params.b);
        let (mut frequency, mut recency, mut now) = (0.0, 0.0, 0.0);
        loop {
            now += -self.uniform().ln() / rate;
            if now > age {
                break;
            }
            frequency += 1.0;
            recency = now;
            if self.uniform() <= dropout {
                break;
            }
        }
        CustomerSummary {
            frequency,
            recency,
            age,
        }
    }

    /// Mean of `frequency` Gamma-Gamma transaction values of one customer.
    pub fn spend(&mut self, params: &GammaGammaParams, frequency: f64) -> SpendSummary {
        let rate = self.gamma(params.q) / params.v;
        let total = self.gamma(params.p * frequency) / rate;
        SpendSummary {
            frequency,
            monetary_value: total / frequency,
        }
    }

    /// An age drawn uniformly from 1..=max_age whole days.
    pub fn whole_days(&mut self, max_age: u32) -> f64 {
        f64::from(self.rng.random_range(1..=max_age))
    }
}
