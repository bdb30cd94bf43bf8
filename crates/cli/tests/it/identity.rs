//! Identity resolution end to end: stitch quality against the demo's truth, junk values and
//! shared devices, and unified ids that survive a second run with new data.

use crate::common::TestProject;

const PLACEHOLDERS: &str =
    "('+33600000000', 'test@test.com', 'noemail@noemail.com', 'aucun@aucun.fr')";

fn quality(project: &TestProject) -> serde_json::Value {
    let json = project.ok(&["identity", "report", "--format", "json"]);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn stitch_matches_the_truth_and_refuses_junk_and_shared_devices() {
    let project = TestProject::new();
    project.ok(&["demo", "generate", "--scale", "0.02", "--seed", "11"]);
    project.ok(&["run"]);

    let q = quality(&project);
    let precision = q["precision"].as_f64().unwrap();
    let recall = q["recall"].as_f64().unwrap();
    assert!(precision >= 0.99, "precision {precision}: {q}");
    assert!(recall >= 0.97, "recall {recall}: {q}");
    assert!(q["resolvable_pairs"].as_f64().unwrap() > 1000.0, "{q}");

    // Cashier placeholders are in the data and never link anyone.
    let junk = project.scalar(
        "SELECT count(*) FROM identity.identifiers \
         WHERE id_value IN ('test@test.com', 'noemail@noemail.com', 'aucun@aucun.fr', '+33600000000') \
         AND status = 'blocklisted'",
    );
    assert!(
        junk.parse::<u32>().unwrap() >= 2,
        "placeholders blocklisted: {junk}"
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM identity.id_map WHERE id_value IN ('test@test.com', 'noemail@noemail.com', 'aucun@aucun.fr')"
        ),
        "0"
    );
    // Household tablets used by two customers are set aside, never a bridge.
    let contested = project.scalar(
        "SELECT count(*) FROM identity.identifiers WHERE id_type = 'device_id' AND status = 'contested'",
    );
    assert!(
        contested.parse::<u32>().unwrap() >= 1,
        "shared devices: {contested}"
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM (SELECT unified_id FROM identity.id_map WHERE id_type = 'customer_id' \
             GROUP BY unified_id HAVING count(*) > 1)"
        ),
        "0"
    );
    // Every person has one golden record.
    assert_eq!(
        project.scalar("SELECT count(*) FROM marts.customer_profiles"),
        project.scalar("SELECT count(DISTINCT unified_id) FROM identity.id_map")
    );
    // A profile's activity is its records' own times, here taken from staging.identities.
    let activity_mismatches = project.scalar(
        "SELECT count(*) FROM marts.customer_profiles AS p FULL JOIN ( \
             SELECT l.unified_id, count(*) AS records, min(i.observed_at) AS first_seen, \
                    max(i.observed_at) AS last_seen \
             FROM identity.record_links AS l JOIN ( \
                 SELECT source, record_id, max(observed_at) AS observed_at \
                 FROM staging.identities GROUP BY source, record_id) AS i \
               ON i.source = l.source AND i.record_id = l.record_id \
             GROUP BY l.unified_id) AS a ON a.unified_id = p.unified_id \
         WHERE (p.records IS DISTINCT FROM coalesce(a.records, 0)) \
            OR (p.first_seen_at IS DISTINCT FROM a.first_seen) \
            OR (p.last_seen_at IS DISTINCT FROM a.last_seen)",
    );
    assert_eq!(activity_mismatches, "0");
    let active: u64 = project
        .scalar("SELECT count(*) FROM marts.customer_profiles WHERE records > 1 AND first_seen_at < last_seen_at")
        .parse()
        .unwrap();
    assert!(
        active > 100,
        "people with several records over time: {active}"
    );
    let report = project.ok(&["identity", "report"]);
    for section in [
        "Persons by cluster size",
        "Largest persons",
        "refused",
        "precision",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
}

#[test]
fn persons_keep_their_ids_when_new_records_arrive() {
    let project = TestProject::new();
    project.ok(&["demo", "generate", "--scale", "0.02", "--seed", "5"]);
    project.ok(&["run"]);
    let persons: u64 = project
        .scalar("SELECT count(DISTINCT unified_id) FROM identity.id_map")
        .parse()
        .unwrap();
    assert_eq!(
        project.scalar("SELECT count(*) FROM identity.merge_history"),
        "0"
    );

    // About 1% new CRM records: new people, plus second records of existing ones.
    let extra = project.lake_path("raw/crm_customers/part-extra.parquet");
    project.ok(&[
        "query",
        "--format",
        "parquet",
        "--output",
        extra.to_str().unwrap(),
        "SELECT 'X' || crm_record_id AS crm_record_id, \
                CASE WHEN row_number() OVER (ORDER BY crm_record_id) % 2 = 0 \
                     THEN customer_id ELSE 'N' || customer_id END AS customer_id, \
                first_name, last_name, 'new.' || email AS email, CAST(NULL AS VARCHAR) AS phone, birth_date, city, \
                postal_code, CAST(NULL AS VARCHAR) AS loyalty_id, created_at, updated_at, preferred_store_id \
         FROM raw.crm_customers ORDER BY crm_record_id LIMIT 40",
    ]);
    project.ok(&["run"]);

    let kept: f64 = project
        .scalar(
            "SELECT CAST(count(DISTINCT previous_unified_id) FILTER (WHERE unified_id = previous_unified_id) AS DOUBLE) \
                    / count(DISTINCT previous_unified_id) FROM identity.identifiers",
        )
        .parse()
        .unwrap();
    assert!(
        kept >= 0.999,
        "only {kept} of {persons} persons kept their id"
    );
    let after: u64 = project
        .scalar("SELECT count(DISTINCT unified_id) FROM identity.id_map")
        .parse()
        .unwrap();
    assert!(
        after > persons,
        "the new customers are new persons: {persons} -> {after}"
    );
    // Second records of existing customers merge nothing away, and history keeps the run.
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM identity.merge_history WHERE run_id IS NULL OR reason IS NULL"
        ),
        "0"
    );
}

#[test]
fn tightening_a_rule_splits_a_cluster_and_records_why() {
    let project = TestProject::new();
    project.ok(&["demo", "generate", "--scale", "0.01", "--seed", "3"]);
    // First run without blocklists or loyalty limit: placeholders may glue people together.
    let config = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    let loose = config
        .split("[identity.limits]")
        .next()
        .unwrap()
        .to_string()
        + "[identity.limits]\ncustomer_id = 1\n";
    project.write("cdphub.toml", &loose);
    project.ok(&["run"]);
    let glued = project.scalar(&format!(
        "SELECT count(*) FROM identity.id_map WHERE id_value IN {PLACEHOLDERS}"
    ));
    assert_ne!(
        glued, "0",
        "without a blocklist some placeholder links people"
    );

    project.write("cdphub.toml", &config);
    project.ok(&["run"]);
    let splits: u64 = project
        .scalar("SELECT count(*) FROM identity.merge_history WHERE event = 'split'")
        .parse()
        .unwrap();
    assert!(splits >= 1, "tighter rules split the glued persons");
    // The placeholder leaves its fake person, with the rule that removed it.
    let reason = project.scalar(
        "SELECT min(reason) FROM identity.merge_history WHERE event = 'split' AND to_unified_id IS NULL",
    );
    assert!(reason.contains("identity.blocklist"), "{reason}");
    assert_eq!(
        project.scalar(&format!(
            "SELECT count(*) FROM identity.id_map WHERE id_value IN {PLACEHOLDERS}"
        )),
        "0"
    );
}
