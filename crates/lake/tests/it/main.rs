//! The lake on `memory://`: raw sources, Delta publishing, time travel and bad raw files.

use std::sync::Arc;

use bytes_helper::parquet_bytes;
use cdphub_lake::config::{Config, SourceConfig, SourceFormat};
use cdphub_lake::delta::{self, DeltaLocation};
use cdphub_lake::{Catalog, Lake, Project};
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use url::Url;

mod bytes_helper {
    use super::*;

    pub fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(batch).unwrap();
        writer.close().unwrap();
        out
    }
}

fn orders(ids: &[&str], amounts: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(Int64Array::from(amounts.to_vec())),
        ],
    )
    .unwrap()
}

fn project() -> Project {
    let mut config = Config::default();
    config.sources.insert(
        "orders".into(),
        SourceConfig {
            path: None,
            format: SourceFormat::Parquet,
            partition_columns: vec!["day".into()],
        },
    );
    Project {
        dir: std::env::temp_dir(),
        config_path: "cdphub.toml".into(),
        config,
    }
}

fn memory_lake() -> Lake {
    Lake::with_store(
        Url::parse("memory:///lake/").unwrap(),
        Arc::new(InMemory::new()),
    )
}

async fn put(lake: &Lake, relative: &str, bytes: Vec<u8>) {
    lake.store()
        .put(&lake.path(relative), bytes.into())
        .await
        .unwrap();
}

async fn scalar(catalog: &Catalog, sql: &str) -> String {
    let batches = catalog.ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let column = batches[0].column(0);
    datafusion::arrow::util::display::array_value_to_string(column, 0).unwrap()
}

#[tokio::test]
async fn raw_sources_read_hive_partitions_and_merge_added_columns() {
    let lake = memory_lake();
    put(
        &lake,
        "raw/orders/day=2025-01-01/a.parquet",
        parquet_bytes(&orders(&["o1", "o2"], &[10, 20])),
    )
    .await;
    // A later export adds a column: accepted, older files read it as NULL.
    let wider = {
        let base = orders(&["o3"], &[5]);
        let mut fields = base.schema().fields().to_vec();
        fields.push(Arc::new(Field::new("coupon", DataType::Utf8, true)));
        let mut columns = base.columns().to_vec();
        columns.push(Arc::new(StringArray::from(vec![Some("WELCOME")])));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    put(
        &lake,
        "raw/orders/day=2025-01-02/b.parquet",
        parquet_bytes(&wider),
    )
    .await;
    put(&lake, "raw/orders/_SUCCESS", Vec::new()).await;

    let catalog = Catalog::open(&project(), lake).await.unwrap();
    assert!(catalog.source_problems.is_empty());
    assert_eq!(
        scalar(&catalog, "SELECT count(*) FROM raw.orders").await,
        "3"
    );
    assert_eq!(
        scalar(
            &catalog,
            "SELECT sum(amount) FROM raw.orders WHERE day = '2025-01-01'"
        )
        .await,
        "30"
    );
    assert_eq!(
        scalar(&catalog, "SELECT count(coupon) FROM raw.orders").await,
        "1"
    );
}

#[tokio::test]
async fn corrupt_and_drifted_files_are_reported_with_their_path() {
    let lake = memory_lake();
    put(
        &lake,
        "raw/orders/day=1/good.parquet",
        parquet_bytes(&orders(&["o1"], &[1])),
    )
    .await;
    put(
        &lake,
        "raw/orders/day=1/broken.parquet",
        b"PAR1 garbage".to_vec(),
    )
    .await;
    let catalog = Catalog::open(&project(), lake.clone()).await.unwrap();
    let problem = catalog.problem_for("orders").expect("a problem for orders");
    let text = problem.error.to_string();
    assert!(
        text.contains("lake/raw/orders/day=1/broken.parquet"),
        "{text}"
    );
    assert!(text.contains("not readable Parquet"), "{text}");

    lake.store()
        .delete(&lake.path("raw/orders/day=1/broken.parquet"))
        .await
        .unwrap();
    let drifted = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "amount",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from(vec!["12.50"]))],
    )
    .unwrap();
    put(
        &lake,
        "raw/orders/day=2/drifted.parquet",
        parquet_bytes(&drifted),
    )
    .await;
    let catalog = Catalog::open(&project(), lake.clone()).await.unwrap();
    let text = catalog.problem_for("orders").unwrap().error.to_string();
    assert!(
        text.contains("drifted.parquet") && text.contains("`amount`"),
        "{text}"
    );

    // A file outside the declared partition layout is also named.
    lake.store()
        .delete(&lake.path("raw/orders/day=2/drifted.parquet"))
        .await
        .unwrap();
    put(
        &lake,
        "raw/orders/loose.parquet",
        parquet_bytes(&orders(&["o9"], &[9])),
    )
    .await;
    let catalog = Catalog::open(&project(), lake).await.unwrap();
    let text = catalog.problem_for("orders").unwrap().error.to_string();
    assert!(
        text.contains("loose.parquet") && text.contains("day=<value>"),
        "{text}"
    );
}

#[tokio::test]
async fn delta_overwrite_publishes_versions_that_stay_readable() {
    let lake = memory_lake();
    put(
        &lake,
        "raw/orders/day=1/a.parquet",
        parquet_bytes(&orders(&["o1", "o2"], &[10, 20])),
    )
    .await;
    let catalog = Catalog::open(&project(), lake.clone()).await.unwrap();
    let location = DeltaLocation::curated("staging", "orders");

    for (version, sql) in [
        (0, "SELECT order_id, amount FROM raw.orders"),
        (1, "SELECT order_id, amount * 2 AS amount FROM raw.orders"),
    ] {
        let plan = catalog.ctx.sql(sql).await.unwrap().logical_plan().clone();
        let table = delta::overwrite(
            &lake,
            &location,
            plan,
            catalog.ctx.state(),
            delta::Layout::Scan,
            &[],
        )
        .await
        .unwrap();
        assert_eq!(table.version(), Some(version));
    }

    // A new catalog sees the latest version; version 0 is still there.
    let catalog = Catalog::open(&project(), lake.clone()).await.unwrap();
    assert_eq!(
        scalar(&catalog, "SELECT sum(amount) FROM staging.orders").await,
        "60"
    );
    let old = delta::open(&lake, &location, Some(0))
        .await
        .unwrap()
        .unwrap();
    let provider = delta::provider(&old, "staging.orders").await.unwrap();
    let total = catalog
        .ctx
        .read_table(provider)
        .unwrap()
        .aggregate(
            vec![],
            vec![datafusion::functions_aggregate::expr_fn::sum(
                datafusion::prelude::col("amount"),
            )],
        )
        .unwrap()
        .collect()
        .await
        .unwrap();
    let value =
        datafusion::arrow::util::display::array_value_to_string(total[0].column(0), 0).unwrap();
    assert_eq!(value, "30");
}

#[tokio::test]
async fn empty_sources_are_listed_not_registered() {
    let catalog = Catalog::open(&project(), memory_lake()).await.unwrap();
    assert_eq!(catalog.empty_sources, vec!["orders".to_string()]);
    assert!(catalog.ctx.sql("SELECT * FROM raw.orders").await.is_err());
}

/// `rows` rows of `id` (ids cycling through 0..`ids`) and `extra` text columns.
fn keyed_table(rows: usize, ids: usize, extra: usize) -> RecordBatch {
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(
        (0..rows).map(|i| (i % ids) as i64),
    ))];
    for c in 0..extra {
        fields.push(Field::new(format!("text_{c}"), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("value {c} of row {i}")),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[tokio::test]
async fn a_left_join_onto_a_per_key_aggregate_hashes_the_aggregate() {
    let catalog = Catalog::open(&project(), memory_lake()).await.unwrap();
    // Few wide rows on the preserved side. The aggregate's row estimate is its input's
    // 10,000 rows, so a rule judging by rows alone would hash the wide side.
    catalog
        .ctx
        .register_batch("people", keyed_table(1_000, 1_000, 12))
        .unwrap();
    catalog
        .ctx
        .register_batch("events", keyed_table(10_000, 500, 0))
        .unwrap();
    let sql = "SELECT p.*, e.events FROM people AS p \
               LEFT JOIN (SELECT id, count(*) AS events FROM events GROUP BY id) AS e ON e.id = p.id";
    let plan = catalog
        .ctx
        .sql(&format!("EXPLAIN {sql}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    let join = text
        .lines()
        .find(|line| line.contains("HashJoinExec"))
        .expect("a hash join in the plan");
    assert!(
        join.contains("join_type=Right"),
        "the aggregate should be the build side (a Right join after the swap):\n{text}"
    );
    // Every person is kept, with their own count.
    assert_eq!(
        scalar(&catalog, &format!("SELECT count(*) FROM ({sql})")).await,
        "1000"
    );
    assert_eq!(
        scalar(
            &catalog,
            &format!("SELECT count(*) FROM ({sql}) WHERE events = 20")
        )
        .await,
        "500"
    );
}
