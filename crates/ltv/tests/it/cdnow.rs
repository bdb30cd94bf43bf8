//! The CDNOW benchmark (2,357 customers, weeks; see tests/data/README.md).
//!
//! Two kinds of reference:
//! - published fits: Fader, Hardie & Lee (2005) for BG/NBD and Fader & Hardie (2013) for
//!   Gamma-Gamma, to the 4-5 digits printed there;
//! - values computed independently with the Python library `lifetimes` 0.11.3 (autograd +
//!   SciPy's BFGS for the fits, SciPy's `hyp2f1` for the predictions) on this same file, in
//!   a throwaway virtualenv (numpy 1.26, scipy 1.12, pandas 2.1):
//!   `BetaGeoFitter(penalizer_coef=0).fit(frequency, recency, T)`,
//!   `GammaGammaFitter(penalizer_coef=0).fit(...)` on the 946 repeat customers, then
//!   `conditional_probability_alive`, `conditional_expected_number_of_purchases_up_to_time`,
//!   `expected_number_of_purchases_up_to_time`, `conditional_expected_average_profit` and
//!   `customer_lifetime_value(bgf, ..., time=12, discount_rate=0.01, freq="W")`.
//!   The long-horizon predictions were checked against mpmath's `hyp2f1` at 40 digits,
//!   which agreed with `lifetimes` to 1e-13.

use cdphub_ltv::{
    BgNbdParams, CustomerSummary, Discounting, FitOptions, GammaGammaParams, SpendSummary,
    fit_bgnbd, fit_gamma_gamma, predicted_clv,
};

const CDNOW: &str = include_str!("../data/cdnow_customers_summary_with_transactions.csv");

struct Customer {
    id: u32,
    history: CustomerSummary,
    spend: SpendSummary,
}

fn cdnow() -> Vec<Customer> {
    let mut lines = CDNOW.lines();
    assert_eq!(lines.next().map(str::trim), Some("ID,x,t_x,T,zbar"));
    lines
        .map(|line| {
            let fields: Vec<f64> = line.trim().split(',').map(|f| f.parse().unwrap()).collect();
            let [id, x, t_x, age, zbar] = fields[..] else {
                panic!("bad line {line:?}");
            };
            Customer {
                id: id as u32,
                history: CustomerSummary {
                    frequency: x,
                    recency: t_x,
                    age,
                },
                spend: SpendSummary {
                    frequency: x,
                    monetary_value: zbar,
                },
            }
        })
        .collect()
}

fn customer(id: u32) -> Customer {
    cdnow().into_iter().find(|c| c.id == id).unwrap()
}

fn relative_error(actual: f64, expected: f64) -> f64 {
    ((actual - expected) / expected).abs()
}

fn assert_close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    let error = relative_error(actual, expected);
    println!("{what}: {actual} vs {expected} (relative error {error:.2e})");
    assert!(
        error <= tolerance,
        "{what}: {actual} vs {expected}, error {error:.2e}"
    );
}

/// `lifetimes`' fit of BG/NBD to CDNOW.
const LIFETIMES_BGNBD: BgNbdParams = BgNbdParams {
    r: 0.24259292827982182,
    alpha: 4.413532265271819,
    a: 0.7928859664406882,
    b: 2.42575238262586,
};

/// `lifetimes`' fit of Gamma-Gamma to CDNOW's repeat customers.
const LIFETIMES_GAMMA_GAMMA: GammaGammaParams = GammaGammaParams {
    p: 6.248802496075312,
    q: 3.744588460923114,
    v: 15.44774806492914,
};

#[test]
fn bgnbd_fit_matches_the_paper_and_lifetimes() {
    let histories: Vec<CustomerSummary> = cdnow().iter().map(|c| c.history).collect();
    assert_eq!(histories.len(), 2357);
    let fit = fit_bgnbd(&histories, &FitOptions::default()).unwrap();
    println!("{fit:?}");
    assert!(fit.converged);
    assert_eq!(fit.customers, 2357.0);

    let params = fit.params;
    // Fader, Hardie & Lee (2005), section 4.
    assert_close("r vs paper", params.r, 0.2426, 0.01);
    assert_close("alpha vs paper", params.alpha, 4.4136, 0.01);
    assert_close("a vs paper", params.a, 0.7929, 0.01);
    assert_close("b vs paper", params.b, 2.4259, 0.01);
    assert_close("LL vs paper", fit.log_likelihood, -9582.4, 0.01);
    // Both optimisers stop at a gradient tolerance, so the parameters agree to ~1e-7.
    assert_close("r vs lifetimes", params.r, LIFETIMES_BGNBD.r, 1e-5);
    assert_close(
        "alpha vs lifetimes",
        params.alpha,
        LIFETIMES_BGNBD.alpha,
        1e-5,
    );
    assert_close("a vs lifetimes", params.a, LIFETIMES_BGNBD.a, 1e-5);
    assert_close("b vs lifetimes", params.b, LIFETIMES_BGNBD.b, 1e-5);
    // The likelihood is flat at the optimum, so it must agree much more tightly.
    let at_reference = LIFETIMES_BGNBD.log_likelihood(&histories).unwrap();
    assert_close(
        "LL vs LL at lifetimes' optimum",
        fit.log_likelihood,
        at_reference,
        1e-9,
    );
    assert!(fit.log_likelihood >= at_reference - 1e-6);
}

#[test]
fn bgnbd_log_likelihood_at_the_published_parameters() {
    let histories: Vec<CustomerSummary> = cdnow().iter().map(|c| c.history).collect();
    let published = BgNbdParams::new(0.2426, 4.4136, 0.7929, 2.4259).unwrap();
    let ll = published.log_likelihood(&histories).unwrap();
    // The paper prints -9582.4; the rounded parameters cost a little likelihood.
    assert!((ll - -9582.4).abs() < 0.1, "{ll}");
}

#[test]
fn bgnbd_predictions_match_lifetimes() {
    // id, p_alive, E[Y(39)], E[Y(52)], from `lifetimes` at its own fitted parameters.
    let expected = [
        (1, 0.72660914, 1.2259104241743999, 1.5585837617716687),
        (2, 0.21222739, 0.20325062425619006, 0.2599070794084924),
        (3, 1.0, 0.1947808579394776, 0.25166572540727083),
        (157, 0.96913359, 20.053665319497334, 25.061422527262742),
        (1516, 0.96891972, 20.750570498763963, 25.759474717124164),
        (325, 0.04099632, 0.7497320310959569, 0.9363288955032066),
        (2328, 0.70592835, 0.8884972427274183, 1.1252259100057718),
    ];
    let model = LIFETIMES_BGNBD;
    for (id, p_alive, next_39, next_52) in expected {
        let history = customer(id).history;
        // `lifetimes` printed P(alive) to 8 digits.
        assert_close(
            &format!("P(alive) of {id}"),
            model.p_alive(&history).unwrap(),
            p_alive,
            1e-7,
        );
        let in_39 = model
            .conditional_expected_purchases(39.0, &history)
            .unwrap();
        assert_close(&format!("E[Y(39)] of {id}"), in_39, next_39, 1e-10);
        let in_52 = model
            .conditional_expected_purchases(52.0, &history)
            .unwrap();
        assert_close(&format!("E[Y(52)] of {id}"), in_52, next_52, 1e-10);
    }
    // FHL (2005), section 4: the customer with x = 2, t_x = 30.43, T = 38.86 is expected to
    // make 1.226 purchases in the next 39 weeks.
    let paper_example = model.conditional_expected_purchases(39.0, &customer(1).history);
    assert!((paper_example.unwrap() - 1.226).abs() < 5e-4);

    for (horizon, expected) in [
        (1.0, 0.05318473689563137),
        (39.0, 1.1950162284461952),
        (78.0, 1.8579717035277383),
    ] {
        let actual = model.expected_purchases(horizon).unwrap();
        assert_close(&format!("E[X({horizon})]"), actual, expected, 1e-10);
    }
}

#[test]
fn bgnbd_long_horizons_for_young_customers_match_high_precision() {
    // (x, t_x, T, t) with t large against α + T, so z = t / (α + T + t) is close to 1;
    // expected values from mpmath (40 digits), the first three also from `lifetimes`.
    let cases = [
        (1.0, 0.5, 1.0, 500.0, 11.665865049197006),
        (0.0, 0.0, 0.5, 500.0, 4.650231586438012),
        (12.0, 3.0, 3.5, 200.0, 55.137755740680086),
        (0.0, 0.0, 0.0, 1e5, 29.590162464429593),
        (3.0, 1.0, 1.0, 1e5, 125.28629875252584),
        (0.0, 0.0, 0.0, 0.001, 5.496380262426863e-5),
    ];
    for (frequency, recency, age, horizon, expected) in cases {
        let history = CustomerSummary {
            frequency,
            recency,
            age,
        };
        let actual = LIFETIMES_BGNBD
            .conditional_expected_purchases(horizon, &history)
            .unwrap();
        assert_close(
            &format!("E[Y({horizon}) | {history:?}]"),
            actual,
            expected,
            1e-11,
        );
    }
}

#[test]
fn gamma_gamma_fit_matches_the_note_and_lifetimes() {
    let spends: Vec<SpendSummary> = cdnow().iter().map(|c| c.spend).collect();
    let fit = fit_gamma_gamma(&spends, &FitOptions::default()).unwrap();
    println!("{fit:?}");
    assert!(fit.converged);
    assert_eq!(fit.customers, 946.0);
    assert_eq!(fit.one_time_buyers_skipped, 2357.0 - 946.0);
    let params = fit.params;
    // Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
    assert_close("p vs note", params.p, 6.2490, 0.01);
    assert_close("q vs note", params.q, 3.7443, 0.01);
    assert_close("v vs note", params.v, 15.4470, 0.01);
    assert_close("p vs lifetimes", params.p, LIFETIMES_GAMMA_GAMMA.p, 1e-6);
    assert_close("q vs lifetimes", params.q, LIFETIMES_GAMMA_GAMMA.q, 1e-6);
    assert_close("v vs lifetimes", params.v, LIFETIMES_GAMMA_GAMMA.v, 1e-6);
    let at_reference = LIFETIMES_GAMMA_GAMMA.log_likelihood(&spends).unwrap();
    // `lifetimes` reports -4055.9232435028644 for the same sum.
    assert_close(
        "LL at lifetimes' optimum",
        at_reference,
        -4055.9232435028644,
        1e-10,
    );
    assert!(fit.log_likelihood >= at_reference - 1e-6);
}

#[test]
fn spend_and_clv_match_lifetimes() {
    // id, conditional expected average profit, CLV over 12 periods of 4.345 weeks at 1% per
    // period, and undiscounted, from `lifetimes` at its fitted parameters.
    let expected = [
        (1, 24.658616189236472, 36.27849576362541, 38.51717802455491),
        (2, 18.911479869929103, 4.637466328569604, 4.926341926987228),
        (3, 35.17100215250665, 8.344093121809983, 8.872284170140574),
        (
            157,
            26.392947663530567,
            625.3500337089599,
            662.7898179581235,
        ),
        (
            1516,
            39.890277230162276,
            972.1255634233548,
            1029.5761336704863,
        ),
        (325, 37.17479588428181, 32.91053463490226, 34.87839185989492),
        (2328, 35.03134151078589, 37.2228270165608, 39.50355596547661),
    ];
    let monthly = Discounting {
        rate_per_period: 0.01,
        period_length: 4.345,
    };
    let horizon = 12.0 * 4.345;
    let (purchases, spend) = (LIFETIMES_BGNBD, LIFETIMES_GAMMA_GAMMA);
    for (id, expected_spend, discounted, undiscounted) in expected {
        let Customer {
            history,
            spend: summary,
            ..
        } = customer(id);
        let average = spend.conditional_expected_average_spend(&summary).unwrap();
        assert_close(&format!("E[M] of {id}"), average, expected_spend, 1e-12);
        let m = summary.monetary_value;
        let clv = predicted_clv(horizon, &purchases, &spend, &history, m, Some(&monthly));
        assert_close(
            &format!("discounted CLV of {id}"),
            clv.unwrap(),
            discounted,
            1e-9,
        );
        let clv = predicted_clv(horizon, &purchases, &spend, &history, m, None);
        assert_close(&format!("CLV of {id}"), clv.unwrap(), undiscounted, 1e-9);
    }
}
