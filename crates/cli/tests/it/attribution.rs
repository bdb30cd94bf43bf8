//! Journeys and attribution marts on the demo data: every model, the per-conversion
//! invariants, the channel-level Markov definition and config errors.

use crate::common::{SCALE, SEED, TestProject};

const MODELS: [&str; 10] = [
    "first_touch",
    "last_non_direct",
    "last_touch",
    "linear",
    "markov",
    "markov_2",
    "markov_3",
    "position_based",
    "shapley",
    "time_decay",
];

fn count(project: &TestProject, sql: &str) -> u64 {
    let value = project.scalar(sql);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{sql} gave {value}"))
}

#[test]
fn attribution_marts_credit_every_conversion_once_per_model() {
    let project = TestProject::new();
    project.ok(&["demo", "--scale", SCALE, "--seed", SEED, "--no-serve"]);
    let tables = project.ok(&["tables"]);
    for mart in [
        "marts.journeys",
        "marts.channel_attribution",
        "marts.attribution_credits",
        "marts.campaign_performance",
    ] {
        assert!(
            tables.contains(mart),
            "{mart} missing after the demo:\n{tables}"
        );
    }

    // Journeys: some converted, some not; each conversion is a completed order.
    let converted = count(
        &project,
        "SELECT count(*) FROM marts.journeys WHERE converted",
    );
    let open = count(
        &project,
        "SELECT count(*) FROM marts.journeys WHERE NOT converted",
    );
    assert!(converted > 20 && open > 20, "{converted} / {open}");
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.journeys AS j JOIN staging.orders AS o ON o.order_id = j.conversion_id \
             WHERE o.status <> 'completed' OR abs(j.revenue - CAST(o.revenue AS DOUBLE)) > 1e-9"
        ),
        0
    );
    // Collapsed repeats: no channel follows itself in a path.
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.journeys AS j \
             CROSS JOIN (SELECT DISTINCT channel FROM marts.channel_attribution) AS c \
             WHERE strpos('>' || array_to_string(j.channels, '>>') || '>', '>' || c.channel || '>>' || c.channel || '>') > 0"
        ),
        0
    );

    // Every model in every output.
    for table in [
        "marts.attribution_credits",
        "marts.channel_attribution",
        "marts.campaign_performance",
    ] {
        let models = project.rows(&format!("SELECT DISTINCT model FROM {table}"));
        let mut expected: Vec<String> = MODELS.iter().map(|m| m.to_string()).collect();
        expected.push("model".to_string());
        expected.sort();
        assert_eq!(models, expected, "{table}");
    }

    // Per conversion and model, credits sum to 1 and revenue credits to the order's revenue,
    // checked against staging.orders rather than the journeys the mart was built from.
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM ( \
               SELECT c.conversion_id, c.model, sum(c.credit) AS credit, sum(c.revenue_credit) AS revenue, \
                      min(CAST(o.revenue AS DOUBLE)) AS order_revenue \
               FROM marts.attribution_credits AS c JOIN staging.orders AS o ON o.order_id = c.conversion_id \
               GROUP BY c.conversion_id, c.model) \
             WHERE abs(credit - 1) > 1e-9 OR abs(revenue - order_revenue) > 1e-9 * order_revenue + 1e-9"
        ),
        0
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM (SELECT model, count(DISTINCT conversion_id) AS n FROM marts.attribution_credits GROUP BY model) \
             WHERE n <> (SELECT count(*) FROM marts.journeys WHERE converted)"
        ),
        0
    );

    // Channel level: every model splits the same conversions and revenue. For markov the
    // share is RE(channel) / sum of RE; rule models are the sums of the per-conversion credits.
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM (SELECT model, sum(conversions) AS c FROM marts.channel_attribution GROUP BY model) \
             WHERE abs(c - (SELECT count(*) FROM marts.journeys WHERE converted)) > 1e-6"
        ),
        0
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.channel_attribution AS a \
             CROSS JOIN (SELECT sum(removal_effect) AS total FROM marts.channel_attribution WHERE model = 'markov') AS r \
             WHERE a.model = 'markov' AND (a.removal_effect NOT BETWEEN 0 AND 1 \
               OR abs(a.conversions - a.removal_effect / r.total * (SELECT count(*) FROM marts.journeys WHERE converted)) > 1e-6)"
        ),
        0
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.channel_attribution AS a \
             JOIN (SELECT model, channel, sum(credit) AS credit FROM marts.attribution_credits GROUP BY model, channel) AS c \
               USING (model, channel) \
             WHERE a.model IN ('first_touch', 'linear', 'time_decay') AND abs(a.conversions - c.credit) > 1e-6"
        ),
        0
    );
    // The demo's paid channels all earn something under the data-driven models.
    let paid = project.rows(
        "SELECT channel FROM marts.channel_attribution WHERE model = 'markov' AND conversions > 0 \
         AND channel IN ('paid_search', 'paid_social', 'display', 'affiliate', 'email')",
    );
    assert_eq!(
        paid,
        [
            "affiliate",
            "channel",
            "display",
            "email",
            "paid_search",
            "paid_social"
        ]
    );

    // Campaigns: spend is the ad platforms', ROAS and CPA follow from it.
    assert_eq!(
        project.scalar(
            "SELECT round(sum(spend), 2) FROM marts.campaign_performance WHERE model = 'linear'"
        ),
        project.scalar("SELECT round(sum(CAST(spend AS DOUBLE)), 2) FROM staging.ad_spend")
    );
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.campaign_performance \
             WHERE (spend > 0 AND revenue > 0 AND abs(roas - revenue / spend) > 1e-9) \
                OR (conversions > 0 AND spend > 0 AND abs(cpa - spend / conversions) > 1e-9) \
                OR (impressions > 0 AND abs(ctr - CAST(clicks AS DOUBLE) / impressions) > 1e-12)"
        ),
        0
    );
    assert!(
        count(
            &project,
            "SELECT count(*) FROM marts.campaign_performance WHERE model = 'markov' AND conversions > 0 AND spend > 0"
        ) > 0
    );
}

#[test]
fn journey_rules_come_from_the_config() {
    let project = TestProject::new();
    let config = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    let config = config
        .replace("lookback-days = 30", "lookback-days = 3")
        .replace("max-steps = 20", "max-steps = 2")
        .replace("collapse-repeats = true", "collapse-repeats = false")
        .replace(
            "models = [\"first_touch\", \"last_touch\", \"last_non_direct\", \"linear\", \"time_decay\", \"position_based\", \"markov\", \"markov_2\", \"markov_3\", \"shapley\"]",
            "models = [\"last_touch\", \"shapley\"]",
        );
    assert!(config.contains("max-steps = 2"), "cdphub.toml changed");
    assert!(
        config.contains("models = [\"last_touch\""),
        "cdphub.toml changed"
    );
    project.write("cdphub.toml", &config);
    project.generate();
    project.ok(&["run", "--select", "+marts.channel_attribution"]);
    assert_eq!(
        count(
            &project,
            "SELECT count(*) FROM marts.journeys WHERE cardinality(channels) > 2 \
             OR (converted AND array_min(touched_at) < converted_at - INTERVAL '3 days')"
        ),
        0
    );
    // Without collapsing, some journeys keep a repeated channel.
    assert!(
        count(
            &project,
            "SELECT count(*) FROM marts.journeys WHERE cardinality(channels) = 2 AND channels[1] = channels[2]"
        ) > 0
    );
    assert_eq!(
        project.rows("SELECT DISTINCT model FROM marts.channel_attribution"),
        ["last_touch", "model", "shapley"]
    );
}

#[test]
fn attribution_config_errors_name_the_file_and_the_key() {
    let project = TestProject::new();
    let base = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    let cases = [
        (
            "half-life-days = 7.0",
            "half-life-days = -2",
            "attribution.half-life-days: time-decay half-life of -2 days: it must be a positive",
        ),
        (
            "position-weights = { first = 0.4, middle = 0.2, last = 0.4 }",
            "position-weights = { first = 0.4, middle = 0.3, last = 0.4 }",
            "attribution.position-weights: position-based weights first=0.4, middle=0.3, last=0.4: the weights do not sum to 1",
        ),
        (
            "\"markov_3\", \"shapley\"]",
            "\"markov_3\", \"shapley\", \"u_shaped\"]",
            "attribution.models: unknown attribution model `u_shaped`: use one of first_touch",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(base.contains(from), "cdphub.toml lacks {from}");
        project.write("cdphub.toml", &base.replacen(from, to, 1));
        let err = project.fails(&["models"]);
        assert!(err.contains("cdphub.toml"), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}
