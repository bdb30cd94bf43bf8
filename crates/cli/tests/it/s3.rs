//! The whole pipeline on s3:// (a local S3-compatible server) gives the same tables as on disk.

use crate::common::{MODEL_TABLES, TestProject, all_models_succeeded};

/// The server from `scripts/s3-server.sh`; `scripts/test.sh` starts it and requires these tests.
fn s3_project(prefix: &str) -> Option<TestProject> {
    let Ok(endpoint) = std::env::var("CDPHUB_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("CDPHUB_REQUIRE_S3_TESTS").is_err(),
            "CDPHUB_REQUIRE_S3_TESTS is set but CDPHUB_TEST_S3_ENDPOINT is not: start the server with scripts/s3-server.sh"
        );
        eprintln!("skipping: no S3 test server (run scripts/test.sh)");
        return None;
    };
    let bucket = std::env::var("CDPHUB_TEST_S3_BUCKET").unwrap_or_else(|_| "cdphub-test".into());
    let unique = format!("{prefix}-{}-{}", std::process::id(), nanos());
    Some(
        TestProject::new()
            .with_lake(&format!("s3://{bucket}/{unique}"))
            .with_env("CDPHUB_S3_ENDPOINT", &endpoint)
            .with_env("CDPHUB_S3_ALLOW_HTTP", "true"),
    )
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn s3_lake_publishes_the_same_tables_as_local_disk() {
    let Some(remote) = s3_project("pipeline") else {
        return;
    };
    let local = TestProject::new();
    for project in [&local, &remote] {
        project.generate();
        let out = project.ok(&["run"]);
        assert!(out.contains(&all_models_succeeded()), "{out}");
    }
    for table in MODEL_TABLES.iter().chain(&["raw.orders", "raw.web_events"]) {
        // unified_since is the time each run issued an id, so it differs between two lakes.
        let query = if ["identity.id_map", "marts.customer_profiles"].contains(table) {
            format!("SELECT * EXCLUDE (unified_since) FROM {table}")
        } else {
            format!("SELECT * FROM {table}")
        };
        let (a, b) = (local.rows(&query), remote.rows(&query));
        assert!(a.len() > 1, "{table} is empty");
        assert!(a == b, "{table} differs between local disk and s3://");
    }
    // Audiences export to s3:// with the lake's S3 settings; the same people as on disk.
    let bucket = std::env::var("CDPHUB_TEST_S3_BUCKET").unwrap_or_else(|_| "cdphub-test".into());
    let target = format!("s3://{bucket}/exports-{}-{}/", std::process::id(), nanos());
    let out = remote.ok(&["export", "audience", "win_back", "--to", &target]);
    assert!(out.contains(&format!("to {target}win_back.csv")), "{out}");
    let local_file = local.path("win_back.csv");
    let local_out = local.ok(&[
        "export",
        "audience",
        "win_back",
        "--to",
        local_file.to_str().unwrap(),
    ]);
    let people = |text: &str| text.split(" of the ").next().map(str::to_string);
    assert_eq!(people(&out), people(&local_out));
    // A second run commits version 1 on S3 too (conditional put of the next log entry).
    remote.ok(&["run", "--select", "staging.orders"]);
    assert_eq!(
        remote
            .scalar("SELECT max(delta_version) FROM hub.model_runs WHERE model = 'staging.orders'"),
        "1"
    );
}
