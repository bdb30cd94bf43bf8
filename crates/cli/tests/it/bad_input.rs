//! Bad input gets a clear error naming the file, model or key, and never damages what was
//! published before.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::common::TestProject;

#[test]
fn unknown_table_names_the_model_file_and_table() {
    let project = TestProject::new();
    project.write("sql/marts/broken.sql", "SELECT * FROM staging.nope");
    for command in [&["run"][..], &["models"][..]] {
        let err = project.fails(command);
        assert!(err.contains("sql/marts/broken.sql"), "{err}");
        assert!(err.contains("`staging.nope`"), "{err}");
    }
}

#[test]
fn cycle_is_named_with_its_files() {
    let project = TestProject::new();
    project.write("sql/marts/a.sql", "SELECT * FROM marts.b");
    project.write("sql/marts/b.sql", "SELECT * FROM marts.a");
    let err = project.fails(&["run"]);
    assert!(err.contains("marts.a -> marts.b -> marts.a"), "{err}");
    assert!(
        err.contains("sql/marts/a.sql") && err.contains("sql/marts/b.sql"),
        "{err}"
    );
}

#[test]
fn sql_that_does_not_parse_names_the_file() {
    let project = TestProject::new();
    project.write("sql/marts/typo.sql", "SELEC order_id FROM staging.orders");
    let err = project.fails(&["run"]);
    assert!(
        err.contains("sql/marts/typo.sql") && err.contains("does not parse"),
        "{err}"
    );
}

#[test]
fn bad_config_key_names_the_key_and_the_file() {
    let project = TestProject::new();
    let config = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    project.write(
        "cdphub.toml",
        &config.replace("max-parallel-models = 2", "max-paralel-models = 2"),
    );
    let err = project.fails(&["tables"]);
    assert!(
        err.contains("cdphub.toml") && err.contains("max-paralel-models"),
        "{err}"
    );
}

#[test]
fn unreachable_lake_fails_fast_with_a_hint() {
    let project = TestProject::new()
        .with_lake("s3://cdphub-test/unreachable")
        .with_env("CDPHUB_S3_ENDPOINT", "http://127.0.0.1:9")
        .with_env("CDPHUB_S3_ALLOW_HTTP", "true")
        .with_env("AWS_ACCESS_KEY_ID", "x")
        .with_env("AWS_SECRET_ACCESS_KEY", "y")
        .with_env("AWS_REGION", "us-east-1");
    let started = std::time::Instant::now();
    let err = project.fails(&["run"]);
    assert!(
        err.contains("cannot reach the lake at s3://cdphub-test/unreachable"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn failing_data_test_keeps_the_published_version_and_skips_downstream() {
    let project = TestProject::new();
    project.generate();
    project.ok(&["run"]);
    let before = project.contents("staging.orders");

    // Dropping rows breaks the reconciliation test of staging.orders.
    let sql = std::fs::read_to_string(project.path("sql/staging/orders.sql")).unwrap();
    project.write(
        "sql/staging/orders.sql",
        &format!("{sql}WHERE status = 'completed'\n"),
    );
    let err = project.fails(&["run"]);
    assert!(err.contains("reconciles_with_raw_orders"), "{err}");
    assert!(err.contains("previous version stays published"), "{err}");
    assert!(err.contains("SKIPPED marts.daily_revenue"), "{err}");

    assert_eq!(project.contents("staging.orders"), before);
    // The failed run's staged files are gone; the first run's remain, as published.
    assert_eq!(project.run_folders("staging.orders").len(), 1);
    assert_eq!(
        project.scalar(
            "SELECT status FROM hub.model_runs WHERE model = 'marts.daily_revenue' ORDER BY started_at DESC LIMIT 1"
        ),
        "skipped"
    );
    assert_eq!(
        project.scalar(
            "SELECT failing_rows FROM hub.test_results WHERE test = 'reconciles_with_raw_orders' AND status = 'fail'"
        ),
        "1"
    );
    assert_eq!(
        project.scalar("SELECT status FROM hub.runs ORDER BY started_at DESC LIMIT 1"),
        "partial"
    );
}

#[test]
fn corrupt_raw_file_is_named_and_only_its_models_fail() {
    let project = TestProject::new();
    project.generate();
    project.ok(&["run"]);
    let before = project.contents("staging.orders");
    std::fs::write(
        project.lake_path("raw/orders/part-99999.parquet"),
        b"this is not parquet",
    )
    .unwrap();
    let err = project.fails(&["run"]);
    assert!(err.contains("raw/orders/part-99999.parquet"), "{err}");
    assert!(err.contains("not readable Parquet"), "{err}");
    assert!(err.contains("FAILED staging.orders"), "{err}");
    // Sources that are fine still run; what was published stays readable.
    assert_eq!(
        project.scalar(
            "SELECT status FROM hub.model_runs WHERE model = 'staging.ad_spend' ORDER BY started_at DESC LIMIT 1"
        ),
        "success"
    );
    assert_eq!(project.contents("staging.orders"), before);
}

#[test]
fn drifted_raw_schema_names_the_file_and_column() {
    let project = TestProject::new();
    project.generate();
    // An upstream export that turned order_id into a number.
    let schema = Arc::new(Schema::new(vec![Field::new(
        "order_id",
        DataType::Int64,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    let path = project.lake_path("raw/orders/part-drifted.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let err = project.fails(&["run"]);
    assert!(err.contains("raw/orders/part-drifted.parquet"), "{err}");
    assert!(
        err.contains("schema of") && err.contains("`order_id`"),
        "{err}"
    );
    let err = project.fails(&["query", "SELECT count(*) FROM raw.orders"]);
    assert!(err.contains("part-drifted.parquet"), "{err}");
}
