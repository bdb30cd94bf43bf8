//! The customer marts on the demo data, and `cdphub export audience`.

use crate::common::TestProject;

fn built_project() -> TestProject {
    let project = TestProject::new();
    project.generate();
    project.ok(&["run"]);
    project
}

/// Sorted `unified_id,contact` lines of a query, for comparing with an export.
fn expected_lines(project: &TestProject, sql: &str) -> Vec<String> {
    let mut lines: Vec<String> = project.rows(sql);
    lines.retain(|l| !l.starts_with("unified_id,"));
    lines
}

#[test]
fn marts_are_built_from_the_demo_data() {
    let project = built_project();
    // One traits row per person; buyers in RFM are exactly the people with a completed
    // order; every RFM buyer has a lifetime value.
    assert_eq!(
        project.scalar("SELECT count(*) FROM marts.customer_traits"),
        project.scalar("SELECT count(*) FROM marts.customer_profiles")
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM marts.rfm_scores"),
        project.scalar("SELECT count(*) FROM marts.customer_traits WHERE orders > 0")
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM marts.customer_ltv"),
        project.scalar("SELECT count(*) FROM marts.rfm_scores")
    );
    // Revenue reconciles across the traits, the KPIs and staging.
    let staged =
        project.scalar("SELECT sum(revenue) FROM staging.orders WHERE status = 'completed'");
    assert_eq!(
        project.scalar("SELECT sum(revenue) FROM marts.daily_kpis WHERE channel = 'all'"),
        staged
    );
    let linked: f64 = project
        .scalar("SELECT sum(revenue) FROM marts.customer_traits")
        .parse()
        .unwrap();
    assert!(linked > 0.0 && linked <= staged.parse::<f64>().unwrap());
    // The default analysis date is the (UTC) day after the last order.
    assert_eq!(
        project.scalar("SELECT DISTINCT analysis_date FROM marts.rfm_scores"),
        project
            .scalar("SELECT CAST(max(ordered_at) + INTERVAL '1 day' AS DATE) FROM staging.orders")
    );
    assert_eq!(project.scalar("SELECT count(*) FROM marts.ltv_model"), "1");
    assert_eq!(
        project.scalar("SELECT bgnbd_r > 0 AND gamma_gamma_p > 0 FROM marts.ltv_model"),
        "true"
    );
}

#[test]
fn as_of_in_the_config_moves_the_analysis_date() {
    let project = TestProject::new().with_env("CDPHUB_ANALYTICS_AS_OF", "2025-06-30");
    project.generate();
    project.ok(&["run"]);
    assert_eq!(
        project.scalar("SELECT DISTINCT analysis_date FROM marts.purchase_summary"),
        "2025-06-30"
    );
    // Nothing bought on or after the analysis date counts.
    assert_eq!(
        project
            .scalar("SELECT max(last_order_date) < DATE '2025-06-30' FROM marts.purchase_summary"),
        "true"
    );
    let err = TestProject::new()
        .with_env("CDPHUB_ANALYTICS_AS_OF", "30/06/2025")
        .fails(&["models"]);
    assert!(
        err.contains("CDPHUB_ANALYTICS_AS_OF") && err.contains("YYYY-MM-DD"),
        "{err}"
    );
    let bad = TestProject::new();
    let config = std::fs::read_to_string(bad.path("cdphub.toml")).unwrap();
    bad.write(
        "cdphub.toml",
        &format!("{config}\n[analytics]\nas-of = \"2025-02-30\"\n"),
    );
    let err = bad.fails(&["models"]);
    assert!(
        err.contains("cdphub.toml") && err.contains("2025-02-30"),
        "{err}"
    );
}

#[test]
fn audiences_export_only_consented_contacts() {
    let project = built_project();
    let folder = project.path("exports");

    // CSV into a folder: the file is named after the audience.
    let out = project.ok(&[
        "export",
        "audience",
        "win_back",
        "--to",
        &format!("{}/", folder.display()),
    ]);
    assert!(
        out.contains("audience win_back (unified_id, email)"),
        "{out}"
    );
    let csv = std::fs::read_to_string(folder.join("win_back.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    assert_eq!(lines.remove(0), "unified_id,email");
    lines.sort();
    // Independently: At Risk buyers whose latest email_marketing decision is a grant.
    let expected = expected_lines(
        &project,
        "SELECT r.unified_id, p.email FROM marts.rfm_scores AS r \
         JOIN marts.customer_profiles AS p ON p.unified_id = r.unified_id \
         WHERE r.segment = 'At Risk' AND p.email IS NOT NULL AND r.unified_id IN ( \
           SELECT unified_id FROM marts.customer_consents \
           WHERE purpose = 'email_marketing' AND granted)",
    );
    assert_eq!(lines, expected);

    // Parquet to a file:// URL; an SMS audience carries the phone, not the email.
    let target = folder.join("vip.parquet");
    project.ok(&[
        "export",
        "audience",
        "high_clv",
        "--format",
        "parquet",
        "--to",
        &format!("file://{}", target.display()),
    ]);
    let file = std::fs::File::open(&target).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["unified_id", "phone"]);
    let rows: usize = builder
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(
        rows.to_string(),
        project.scalar(
            "SELECT count(*) FROM marts.audience_high_clv AS a JOIN marts.customer_consents AS c \
             ON c.unified_id = a.unified_id AND c.purpose = 'sms_marketing' AND c.granted"
        )
    );

    let err = project.fails(&["export", "audience", "nope", "--to", "x.csv"]);
    assert!(
        err.contains("unknown audience `nope`")
            && err.contains("win_back")
            && err.contains("high_clv"),
        "{err}"
    );
    let err = project.fails(&["export", "audience", "win_back", "--to", "memory:///x.csv"]);
    assert!(err.contains("memory://"), "{err}");
}
