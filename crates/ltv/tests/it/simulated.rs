//! Fits of customer bases simulated from known parameters, in days as the marts use.

use std::collections::BTreeMap;
use std::time::Instant;

use cdphub_ltv::{
    BgNbdParams, CustomerSummary, FitOptions, GammaGammaParams, SpendSummary, fit_bgnbd,
    fit_bgnbd_weighted, fit_gamma_gamma,
};

use crate::simulate::Simulator;

/// CDNOW's BG/NBD parameters with alpha converted from weeks to days.
const DAILY: BgNbdParams = BgNbdParams {
    r: 0.2426,
    alpha: 4.4136 * 7.0,
    a: 0.7929,
    b: 2.4259,
};

const SPEND: GammaGammaParams = GammaGammaParams {
    p: 6.249,
    q: 3.744,
    v: 15.447,
};

/// Customers first seen uniformly over two years, with recency in whole days.
fn daily_customers(count: usize, seed: u64) -> Vec<CustomerSummary> {
    let mut simulator = Simulator::new(seed);
    (0..count)
        .map(|_| {
            let age = simulator.whole_days(730);
            let mut history = simulator.customer(&DAILY, age);
            history.recency = history.recency.round();
            history
        })
        .collect()
}

fn assert_recovered(what: &str, fitted: f64, truth: f64, tolerance: f64) {
    let error = ((fitted - truth) / truth).abs();
    println!("{what}: fitted {fitted}, true {truth}, relative error {error:.3}");
    assert!(error <= tolerance, "{what}: fitted {fitted}, true {truth}");
}

#[test]
fn bgnbd_recovers_simulated_parameters() {
    let customers = daily_customers(60_000, 7);
    let fit = fit_bgnbd(&customers, &FitOptions::default()).unwrap();
    // With 60,000 customers the standard errors are a few percent (a and b the widest).
    assert_recovered("r", fit.params.r, DAILY.r, 0.05);
    assert_recovered("alpha", fit.params.alpha, DAILY.alpha, 0.08);
    assert_recovered("a", fit.params.a, DAILY.a, 0.15);
    assert_recovered("b", fit.params.b, DAILY.b, 0.15);
}

#[test]
fn gamma_gamma_recovers_simulated_parameters() {
    let mut simulator = Simulator::new(11);
    let spends: Vec<SpendSummary> = (0..30_000)
        .map(|i| simulator.spend(&SPEND, f64::from(1 + i % 8)))
        .collect();
    let fit = fit_gamma_gamma(&spends, &FitOptions::default()).unwrap();
    assert_recovered("p", fit.params.p, SPEND.p, 0.1);
    assert_recovered("q", fit.params.q, SPEND.q, 0.1);
    assert_recovered("v", fit.params.v, SPEND.v, 0.15);
}

#[test]
fn weighted_fit_equals_the_fit_of_every_customer() {
    let customers = daily_customers(20_000, 3);
    let mut counts: BTreeMap<[u64; 3], (CustomerSummary, f64)> = BTreeMap::new();
    for c in &customers {
        let key = [c.frequency, c.recency, c.age].map(f64::to_bits);
        counts.entry(key).or_insert((*c, 0.0)).1 += 1.0;
    }
    let groups: Vec<(CustomerSummary, f64)> = counts.into_values().collect();
    assert!(
        groups.len() < customers.len() / 2,
        "{} groups",
        groups.len()
    );

    let options = FitOptions::default();
    let each = fit_bgnbd(&customers, &options).unwrap();
    let weighted = fit_bgnbd_weighted(&groups, &options).unwrap();
    assert_eq!(each.customers, weighted.customers);
    assert_eq!(each.distinct_histories, groups.len());
    let (a, b) = (each.params, weighted.params);
    for (x, y) in [(a.r, b.r), (a.alpha, b.alpha), (a.a, b.a), (a.b, b.b)] {
        assert!(((x - y) / x).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    assert!(
        (each.log_likelihood - weighted.log_likelihood).abs() < 1e-6 * each.log_likelihood.abs()
    );
}

/// Timing on one million customers; run with
/// `cargo test --release -p cdphub-ltv -- --ignored --nocapture million`.
#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn million_customers_timing() {
    let started = Instant::now();
    let customers = daily_customers(1_000_000, 2024);
    println!("simulated 1,000,000 customers in {:.2?}", started.elapsed());

    let started = Instant::now();
    let fit = fit_bgnbd(&customers, &FitOptions::default()).unwrap();
    println!(
        "BG/NBD fit (grouping included) in {:.2?}: {} distinct histories, {} iterations, {:?}",
        started.elapsed(),
        fit.distinct_histories,
        fit.iterations,
        fit.params
    );

    let started = Instant::now();
    let mut total = 0.0;
    for customer in &customers {
        total += fit.params.p_alive(customer).unwrap();
        total += fit
            .params
            .conditional_expected_purchases(365.0, customer)
            .unwrap();
    }
    println!(
        "P(alive) and E[Y(365 days)] for every customer in {:.2?} (checksum {total:.3})",
        started.elapsed()
    );

    let mut simulator = Simulator::new(5);
    let spends: Vec<SpendSummary> = customers
        .iter()
        .filter(|c| c.frequency > 0.0)
        .map(|c| simulator.spend(&SPEND, c.frequency))
        .collect();
    let started = Instant::now();
    let fit = fit_gamma_gamma(&spends, &FitOptions::default()).unwrap();
    println!(
        "Gamma-Gamma fit of {} repeat customers in {:.2?}: {} iterations, {:?}",
        spends.len(),
        started.elapsed(),
        fit.iterations,
        fit.params
    );
}
