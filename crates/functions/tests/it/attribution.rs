//! Properties of the attribution SQL functions on random paths: the SQL wrapper gives the
//! crate's numbers, totals and per-conversion credits add up, and the Shapley model keeps the
//! axioms (efficiency, symmetry, null player).

use std::collections::BTreeMap;

use cdphub_attribution::{AttributionConfig, Attributor, PathSet};
use cdphub_functions::{AttributionSettings, register_attribution};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;

/// A path (channel indices into `a`..`e`), conversions, non-conversions, revenue.
type RawPath = (Vec<usize>, u32, u32, u32);

const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

fn paths() -> impl Strategy<Value = Vec<RawPath>> {
    prop::collection::vec(
        (
            prop::collection::vec(0..NAMES.len(), 1..5),
            0u32..5,
            0u32..5,
            0u32..500,
        ),
        1..10,
    )
}

fn values_sql(paths: &[RawPath]) -> String {
    let rows: Vec<String> = paths
        .iter()
        .map(|(path, conversions, non_conversions, revenue)| {
            let names: Vec<String> = path.iter().map(|&i| format!("'{}'", NAMES[i])).collect();
            // Revenue only where something converted.
            let revenue = if *conversions > 0 { *revenue } else { 0 };
            format!(
                "([{}], {conversions}, {non_conversions}, {revenue}.0)",
                names.join(", ")
            )
        })
        .collect();
    format!(
        "(VALUES {}) AS p(path, conversions, non_conversions, revenue)",
        rows.join(", ")
    )
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<(String, f64, f64)> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        let key = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let key = key.as_string::<i32>();
        let first = batch.column(1).as_primitive::<Float64Type>();
        let second = batch.column(2).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            rows.push((
                key.value(row).to_string(),
                first.value(row),
                second.value(row),
            ));
        }
    }
    rows
}

fn session() -> SessionContext {
    let ctx = SessionContext::new();
    register_attribution(&ctx, &AttributionSettings::default(), "test").unwrap();
    ctx
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn sql_channel_credits_are_the_crates(paths in paths(), model in prop::sample::select(vec!["markov", "markov_2", "markov_3", "shapley", "linear", "position_based", "last_non_direct"])) {
        let ctx = session();
        let sql = format!(
            "SELECT c['channel'], c['conversions'], c['revenue'] FROM (SELECT unnest(attribute(path, conversions, non_conversions, revenue, '{model}')) AS c FROM {})",
            values_sql(&paths)
        );
        let got = block_on(query(&ctx, &sql));
        let mut set = PathSet::new();
        for (path, conversions, non_conversions, revenue) in &paths {
            let names: Vec<&str> = path.iter().map(|&i| NAMES[i]).collect();
            let revenue = if *conversions > 0 { *revenue } else { 0 };
            set.push(&names, f64::from(*conversions), f64::from(*non_conversions), f64::from(revenue)).unwrap();
        }
        let want = Attributor::from_name(model, AttributionConfig::default()).unwrap().attribute_paths(&set).unwrap();
        prop_assert_eq!(got.len(), want.channels().len());
        for ((channel, conversions, revenue), credit) in got.iter().zip(want.channels()) {
            prop_assert_eq!(channel, &credit.channel);
            prop_assert!(close(*conversions, credit.conversions, 1e-12), "{} {} vs {}", channel, conversions, credit.conversions);
            prop_assert!(close(*revenue, credit.revenue, 1e-12));
        }
        // Channel totals are the total conversions and revenue (efficiency for Shapley).
        if set.total_conversions() > 0.0 {
            let conversions: f64 = got.iter().map(|g| g.1).sum();
            let revenue: f64 = got.iter().map(|g| g.2).sum();
            prop_assert!(close(conversions, set.total_conversions(), 1e-9));
            prop_assert!(close(revenue, set.total_revenue(), 1e-9));
        }
    }

    #[test]
    fn every_conversion_is_credited_once(paths in paths(), model in prop::sample::select(vec!["markov", "markov_3", "shapley"])) {
        let ctx = session();
        let values = values_sql(&paths);
        let sql = format!(
            "WITH p AS (SELECT row_number() OVER () AS id, * FROM {values}), \
                  fit AS (SELECT attribute(path, conversions, non_conversions, revenue, '{model}') AS v FROM p) \
             SELECT CAST(id AS VARCHAR), sum(c['credit']), sum(c['revenue_credit']) - max(revenue) \
             FROM (SELECT p.id, p.revenue, unnest(credit_path(p.path, p.revenue, fit.v)) AS c \
                   FROM p CROSS JOIN fit WHERE p.conversions > 0) GROUP BY id"
        );
        for (id, credit, revenue_gap) in block_on(query(&ctx, &sql)) {
            prop_assert!(close(credit, 1.0, 1e-12), "path {} credits {}", id, credit);
            prop_assert!(revenue_gap.abs() < 1e-9, "path {} revenue off by {}", id, revenue_gap);
        }
        let sql = format!(
            "SELECT CAST(id AS VARCHAR), sum(c['credit']), sum(c['revenue_credit']) - max(revenue) \
             FROM (SELECT row_number() OVER () AS id, revenue, unnest(attribute_journey(path, revenue, 'position_based')) AS c FROM {values}) GROUP BY id"
        );
        for (id, credit, revenue_gap) in block_on(query(&ctx, &sql)) {
            prop_assert!(close(credit, 1.0, 1e-12), "journey {} credits {}", id, credit);
            prop_assert!(revenue_gap.abs() < 1e-9);
        }
    }

    #[test]
    fn shapley_symmetry_and_null_player(paths in paths()) {
        // "e" only ever appears next to "d", and "a" never on a path that converted.
        let paths: Vec<RawPath> = paths
            .into_iter()
            .map(|(mut path, conversions, non_conversions, revenue)| {
                path.retain(|&i| i != 4);
                if path.contains(&3) {
                    path.push(4);
                }
                if conversions > 0 {
                    path.retain(|&i| i != 0);
                    if path.is_empty() {
                        path.push(1);
                    }
                }
                (path, conversions, non_conversions, revenue)
            })
            .collect();
        let ctx = session();
        let sql = format!(
            "SELECT c['channel'], c['conversions'], c['revenue'] FROM (SELECT unnest(attribute(path, conversions, non_conversions, revenue, 'shapley')) AS c FROM {})",
            values_sql(&paths)
        );
        let credits: BTreeMap<String, f64> = block_on(query(&ctx, &sql)).into_iter().map(|(c, v, _)| (c, v)).collect();
        if let (Some(d), Some(e)) = (credits.get("d"), credits.get("e")) {
            prop_assert!(close(*d, *e, 1e-12), "d {} e {}", d, e);
        }
        if let Some(a) = credits.get("a") {
            prop_assert_eq!(*a, 0.0);
        }
    }
}
