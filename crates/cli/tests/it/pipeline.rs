//! The happy path: generate, run, query, run again.

use crate::common::{MODEL_TABLES, TestProject, all_models_succeeded, model_count};

#[test]
fn demo_data_runs_into_tested_tables_and_history() {
    let project = TestProject::new();
    project.generate();
    let out = project.ok(&["run"]);
    assert!(out.contains(&all_models_succeeded()), "{out}");

    // Staging keeps every raw order and the mart adds up to the completed revenue.
    assert_eq!(
        project.scalar("SELECT count(*) FROM raw.orders"),
        project.scalar("SELECT count(*) FROM staging.orders")
    );
    let mart = project.scalar("SELECT sum(revenue) FROM marts.daily_revenue");
    let staged =
        project.scalar("SELECT sum(total_amount) FROM raw.orders WHERE status = 'completed'");
    assert_eq!(mart, staged);
    let orders: u64 = project
        .scalar("SELECT count(*) FROM staging.orders")
        .parse()
        .unwrap();
    assert!(orders > 100, "expected some orders, got {orders}");

    // Every identifier type of the contract shows up, normalised.
    let types = project.ok(&[
        "query",
        "--format",
        "csv",
        "SELECT DISTINCT id_type FROM staging.identities ORDER BY id_type",
    ]);
    assert_eq!(
        types.lines().skip(1).collect::<Vec<_>>(),
        [
            "anonymous_id",
            "customer_id",
            "device_id",
            "email",
            "loyalty_id",
            "phone"
        ]
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM staging.identities WHERE id_type = 'phone' AND id_value NOT LIKE '+%'"
        ),
        "0"
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM staging.identities WHERE id_type = 'email' AND id_value <> lower(trim(id_value))"
        ),
        "0"
    );

    // The run is recorded, one row per model, with the rows each wrote.
    assert_eq!(
        project.scalar("SELECT count(*) FROM hub.model_runs WHERE status = 'success'"),
        model_count().to_string()
    );
    assert_eq!(
        project.scalar("SELECT rows_written FROM hub.model_runs WHERE model = 'staging.orders'"),
        orders.to_string()
    );
    assert_eq!(project.scalar("SELECT status FROM hub.runs"), "success");
    assert!(
        project
            .scalar("SELECT count(*) FROM hub.test_results WHERE status = 'pass'")
            .parse::<u64>()
            .unwrap()
            > 20
    );

    let tables = project.ok(&["tables"]);
    for table in MODEL_TABLES {
        assert!(tables.contains(table), "{table} missing from:\n{tables}");
    }
}

#[test]
fn running_twice_publishes_identical_contents() {
    let project = TestProject::new();
    project.generate();
    project.ok(&["run"]);
    let first: Vec<Vec<String>> = MODEL_TABLES.iter().map(|t| project.contents(t)).collect();
    project.ok(&["run"]);
    let second: Vec<Vec<String>> = MODEL_TABLES.iter().map(|t| project.contents(t)).collect();
    for ((table, a), b) in MODEL_TABLES.iter().zip(&first).zip(&second) {
        assert!(a.len() > 1, "{table} is empty");
        assert!(a == b, "{table} differs between two runs");
    }
    // Two commits: the first version stays readable (time travel).
    assert_eq!(
        project
            .scalar("SELECT max(delta_version) FROM hub.model_runs WHERE model = 'staging.orders'"),
        "1"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM hub.runs"), "2");
    // Each publish committed the files its run staged; the staged logs are gone.
    let runs = project.run_folders("staging.orders");
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        // (An object store has no folders; on disk an empty one may stay.)
        let staged_log = std::fs::read_dir(run.join("_delta_log"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(staged_log, 0, "{} kept its staged log", run.display());
    }
}

#[test]
fn select_runs_a_model_and_what_depends_on_it() {
    let project = TestProject::new();
    project.generate();
    project.ok(&["run"]);
    let out = project.ok(&["run", "--select", "staging.orders+"]);
    // order_lines follows (its relationship test reads staging.orders), then the marts over
    // orders: daily_revenue, daily_kpis, customer_traits, purchase_summary, rfm_scores,
    // ltv_model, customer_ltv, the two audiences, and the five attribution marts
    // (journey_events, journeys and what is built from them).
    assert!(out.contains("16 succeeded"), "{out}");
    let err = project.fails(&["run", "--select", "nope"]);
    assert!(
        err.contains("--select nope") && err.contains("cdphub models"),
        "{err}"
    );
}

#[test]
fn query_writes_csv_json_and_parquet() {
    let project = TestProject::new();
    project.generate();
    let sql = "SELECT order_id, status FROM raw.orders ORDER BY order_id LIMIT 3";
    let csv = project.ok(&["query", "--format", "csv", sql]);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("order_id,status"), "{csv}");
    let json = project.ok(&["query", "--format", "json", sql]);
    assert_eq!(json.lines().count(), 3, "{json}");
    assert!(
        json.lines().all(|l| l.starts_with("{\"order_id\":")),
        "{json}"
    );

    let target = project.path("out.parquet");
    project.ok(&[
        "query",
        "--format",
        "parquet",
        "--output",
        target.to_str().unwrap(),
        sql,
    ]);
    let file = std::fs::File::open(&target).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);

    let table = project.ok(&["query", sql]);
    assert!(
        table.contains("| order_id") && table.contains("3 row(s)"),
        "{table}"
    );
}

#[test]
fn models_lists_the_graph() {
    let project = TestProject::new();
    let out = project.ok(&["models"]);
    assert!(out.contains("marts.daily_revenue"), "{out}");
    assert!(out.contains("reads: staging.orders"), "{out}");
    let dot = project.ok(&["models", "--format", "dot"]);
    assert!(
        dot.contains("\"staging.orders\" -> \"marts.daily_revenue\""),
        "{dot}"
    );
}

#[test]
fn demo_goes_from_nothing_to_a_tour() {
    let project = TestProject::new();
    let out = project.ok(&["demo", "--scale", "0.005", "--seed", "7", "--no-serve"]);
    assert!(out.contains("persons generated"), "{out}");
    assert!(out.contains(&all_models_succeeded()), "{out}");
    assert!(out.contains("marts.daily_revenue"), "{out}");
    assert!(out.contains("What to try next"), "{out}");
    // The sample query's channels come from the data.
    for channel in ["store", "web", "app"] {
        assert!(
            out.contains(&format!("| {channel}")),
            "{channel} missing:\n{out}"
        );
    }
    // A second demo reuses the data instead of regenerating it.
    let again = project.ok(&["demo", "--no-serve"]);
    assert!(again.contains("reusing it"), "{again}");
}

#[test]
fn lookup_keys_publish_sorted_rows_in_small_pages() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::serialized_reader::ReadOptionsBuilder;

    let project = TestProject::new();
    project.generate();
    let settings = std::fs::read_to_string(project.path("sql/staging/orders.toml")).unwrap();
    project.write(
        "sql/staging/orders.toml",
        &format!("lookup-keys = [\"order_id\"]\n{settings}"),
    );
    project.ok(&["run", "--select", "staging.orders"]);

    let runs = project.run_folders("staging.orders");
    assert_eq!(runs.len(), 1, "one publish: {runs:?}");
    let files: Vec<_> = std::fs::read_dir(&runs[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert_eq!(files.len(), 1, "one file for one small publish: {files:?}");
    let file = || std::fs::File::open(&files[0]).unwrap();

    // Rows in key order.
    let reader = ParquetRecordBatchReaderBuilder::try_new(file()).unwrap();
    let key = reader.schema().index_of("order_id").unwrap();
    let mut keys = Vec::new();
    for batch in reader.build().unwrap() {
        let column = arrow::compute::cast(
            batch.unwrap().column(key),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let column = column
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        keys.extend(column.iter().map(|v| v.unwrap().to_string()));
    }
    let published = project.scalar("SELECT count(*) FROM staging.orders");
    assert_eq!(keys.len().to_string(), published);
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "order_id is not sorted"
    );

    // Pages of at most 1,024 rows, and no dictionary to load before the first value.
    let options = ReadOptionsBuilder::new().with_page_index().build();
    let parquet = SerializedFileReader::new_with_options(file(), options).unwrap();
    let metadata = parquet.metadata();
    let chunk = metadata.row_group(0).column(key);
    assert!(
        chunk.dictionary_page_offset().is_none(),
        "order_id has a dictionary"
    );
    let pages = metadata.offset_index().expect("page index")[0][key].page_locations();
    assert!(
        pages.len() >= 2,
        "{} rows in {} page(s)",
        keys.len(),
        pages.len()
    );
    let mut starts: Vec<i64> = pages.iter().map(|p| p.first_row_index).collect();
    starts.push(metadata.row_group(0).num_rows());
    assert!(starts.windows(2).all(|w| w[1] - w[0] <= 1024), "{starts:?}");

    // A key the query does not return is an error naming the file.
    project.write(
        "sql/staging/orders.toml",
        &format!("lookup-keys = [\"order_number\"]\n{settings}"),
    );
    let text = project.fails_with_output(&["run", "--select", "staging.orders"]);
    assert!(
        text.contains("lookup-keys names `order_number`") && text.contains("orders.toml"),
        "{text}"
    );
}

#[test]
fn record_links_are_partitioned_by_source() {
    let project = TestProject::new();
    project.generate();
    project.ok(&[
        "run",
        "--select",
        "+identity.record_links",
        "staging.orders",
    ]);

    // One Delta partition folder per source, and every row in its source's folder.
    let runs = project.run_folders("identity.record_links");
    assert_eq!(runs.len(), 1, "one publish: {runs:?}");
    let mut partitions: Vec<String> = std::fs::read_dir(&runs[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("source="))
        .collect();
    partitions.sort();
    let sources = project.scalar(
        "SELECT string_agg(source, '|' ORDER BY source) FROM \
         (SELECT DISTINCT CAST(source AS VARCHAR) AS source FROM identity.record_links)",
    );
    let expected: Vec<String> = sources.split('|').map(|s| format!("source={s}")).collect();
    assert_eq!(partitions, expected);
    assert_eq!(
        project.scalar("SELECT count(*) FROM identity.record_links WHERE source = 'orders'"),
        project.scalar(
            "SELECT count(*) FROM identity.record_links AS l JOIN staging.orders AS o \
             ON l.source = o.source AND l.record_id = o.record_id"
        ),
    );

    // A partition column the query does not return is an error naming the file.
    let settings = std::fs::read_to_string(project.path("sql/identity/record_links.toml")).unwrap();
    project.write(
        "sql/identity/record_links.toml",
        &settings.replace("partition-by = [\"source\"]", "partition-by = [\"origin\"]"),
    );
    let text = project.fails_with_output(&["run", "--select", "identity.record_links"]);
    assert!(
        text.contains("partition-by names `origin`") && text.contains("record_links.toml"),
        "{text}"
    );
}

#[test]
fn incremental_models_replace_by_key_or_append() {
    let project = TestProject::new();
    project.generate();
    // By key: a second run replaces the rows it returns again and keeps the others.
    project.write(
        "sql/marts/order_flags.toml",
        "materialized = \"incremental\"\nunique-key = [\"order_id\"]\nlookup-keys = [\"order_id\"]\n",
    );
    project.write(
        "sql/marts/order_flags.sql",
        "SELECT order_id, 'first' AS flag FROM staging.orders\n",
    );
    // Without a key: every run's rows are added.
    project.write(
        "sql/marts/order_log.toml",
        "materialized = \"incremental\"\n",
    );
    project.write(
        "sql/marts/order_log.sql",
        "SELECT order_id, 'first' AS flag FROM staging.orders WHERE status = 'completed'\n",
    );
    let select = ["run", "--select", "+marts.order_flags", "marts.order_log"];
    project.ok(&select);
    let orders = project.scalar("SELECT count(*) FROM staging.orders");
    let completed =
        project.scalar("SELECT count(*) FROM staging.orders WHERE status = 'completed'");
    assert_eq!(
        project.scalar("SELECT count(*) FROM marts.order_flags"),
        orders
    );

    for table in ["order_flags", "order_log"] {
        let path = format!("sql/marts/{table}.sql");
        let sql = std::fs::read_to_string(project.path(&path)).unwrap();
        let sql = sql.replace("'first'", "'second'");
        let sql = if table == "order_flags" {
            format!("{}WHERE status = 'completed'\n", sql)
        } else {
            sql
        };
        project.write(&path, &sql);
    }
    project.ok(&["run", "--select", "marts.order_flags", "marts.order_log"]);

    // Sorted lines, the header among them.
    let counts = |table: &str| {
        project.rows(&format!(
            "SELECT flag, count(*) FROM marts.{table} GROUP BY flag"
        ))
    };
    let cancelled_or_returned = orders.parse::<u64>().unwrap() - completed.parse::<u64>().unwrap();
    assert_eq!(
        counts("order_flags"),
        vec![
            format!("first,{cancelled_or_returned}"),
            "flag,count(*)".to_string(),
            format!("second,{completed}"),
        ]
    );
    assert_eq!(
        counts("order_log"),
        vec![
            format!("first,{completed}"),
            "flag,count(*)".to_string(),
            format!("second,{completed}"),
        ]
    );
    // The first publish of each adopted its run's files; the keyed table's second run was
    // rewritten whole (its staged rows discarded), the other added its run's files.
    assert_eq!(project.run_folders("marts.order_flags").len(), 1);
    assert_eq!(project.run_folders("marts.order_log").len(), 2);
    assert_eq!(
        project.scalar(
            "SELECT max(delta_version) FROM hub.model_runs WHERE model = 'marts.order_log'"
        ),
        "1"
    );
}
