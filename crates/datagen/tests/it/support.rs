//! Shared helpers: generate into an in-memory store and read tables back.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{
    Date32Type, Decimal128Type, Int32Type, Int64Type, SchemaRef, TimestampMicrosecondType,
};
use cdphub_datagen::{GenerateOptions, GenerateReport, NoProgress, generate};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(future)
}

pub struct Lake {
    pub store: Arc<InMemory>,
    pub report: GenerateReport,
}

/// Generates `(scale, seed)` under `root` in `store`.
pub fn generate_into(store: Arc<InMemory>, root: &str, scale: f64, seed: u64) -> GenerateReport {
    let options = GenerateOptions { scale, seed };
    block_on(generate(store, &Path::from(root), &options, &NoProgress))
        .expect("generation succeeds")
}

pub fn generate_lake(scale: f64, seed: u64) -> Lake {
    let store = Arc::new(InMemory::new());
    let report = generate_into(store.clone(), "", scale, seed);
    Lake { store, report }
}

/// The lake at scale 0.02 (2,000 persons), generated once for all tests that only read it.
pub fn shared_lake() -> &'static Lake {
    static LAKE: OnceLock<Lake> = OnceLock::new();
    LAKE.get_or_init(|| generate_lake(0.02, 2024))
}

/// All object paths under a prefix, sorted.
pub fn list(store: &InMemory, prefix: &str) -> Vec<(Path, u64)> {
    let prefix = Path::from(prefix);
    let mut objects: Vec<(Path, u64)> = block_on(store.list(Some(&prefix)).try_collect::<Vec<_>>())
        .expect("list")
        .into_iter()
        .map(|meta| (meta.location, meta.size))
        .collect();
    objects.sort();
    objects
}

/// Content of every object, keyed by path.
pub fn snapshot(store: &InMemory) -> BTreeMap<String, Vec<u8>> {
    list(store, "")
        .into_iter()
        .map(|(path, _)| {
            let bytes = block_on(async { store.get(&path).await?.bytes().await }).expect("get");
            (path.to_string(), bytes.to_vec())
        })
        .collect()
}

/// One Parquet file read back: its schema, row group sizes and rows.
pub struct ParquetFile {
    pub schema: SchemaRef,
    pub row_groups: Vec<i64>,
    pub batch: RecordBatch,
}

pub fn read_file(store: &InMemory, path: &Path) -> ParquetFile {
    let bytes = block_on(async { store.get(path).await?.bytes().await }).expect("get");
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("valid parquet");
    let row_groups = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| rg.num_rows())
        .collect();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    let batch = concat_batches(&schema, &batches).expect("concat");
    ParquetFile {
        schema,
        row_groups,
        batch,
    }
}

/// All rows of a raw source (or of the truth), with the hive partition value of each row.
pub struct Table {
    pub batch: RecordBatch,
    pub partitions: Vec<Option<String>>,
}

pub fn read_table(store: &InMemory, prefix: &str) -> Table {
    let mut batches = Vec::new();
    let mut partitions = Vec::new();
    let mut schema = None;
    for (path, _) in list(store, prefix) {
        let file = read_file(store, &path);
        let partition = path
            .parts()
            .find_map(|p| p.as_ref().strip_prefix("event_month=").map(str::to_owned));
        partitions.extend(std::iter::repeat_n(partition, file.batch.num_rows()));
        schema.get_or_insert(file.schema.clone());
        batches.push(file.batch);
    }
    let schema = schema.expect("at least one file");
    Table {
        batch: concat_batches(&schema, &batches).expect("concat"),
        partitions,
    }
}

pub fn raw(lake: &Lake, source: &str) -> Table {
    read_table(&lake.store, &format!("raw/{source}"))
}

pub fn truth(lake: &Lake) -> Table {
    read_table(&lake.store, "_truth/record_persons")
}

impl Table {
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    fn column(&self, name: &str) -> &dyn Array {
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name}"))
            .as_ref()
    }

    pub fn strs(&self, name: &str) -> Vec<Option<&str>> {
        self.column(name).as_string::<i32>().iter().collect()
    }

    /// A non-null string column.
    pub fn strings(&self, name: &str) -> Vec<&str> {
        self.strs(name)
            .into_iter()
            .map(|v| v.expect("not null"))
            .collect()
    }

    pub fn timestamps(&self, name: &str) -> Vec<i64> {
        self.column(name)
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec()
    }

    pub fn dates(&self, name: &str) -> Vec<Option<i32>> {
        self.column(name)
            .as_primitive::<Date32Type>()
            .iter()
            .collect()
    }

    pub fn ints(&self, name: &str) -> Vec<i32> {
        self.column(name)
            .as_primitive::<Int32Type>()
            .values()
            .to_vec()
    }

    pub fn longs(&self, name: &str) -> Vec<i64> {
        self.column(name)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    pub fn cents(&self, name: &str) -> Vec<i128> {
        self.column(name)
            .as_primitive::<Decimal128Type>()
            .values()
            .to_vec()
    }

    pub fn bools(&self, name: &str) -> Vec<bool> {
        self.column(name)
            .as_boolean()
            .iter()
            .map(|v| v.expect("not null"))
            .collect()
    }
}

/// The primary key column of each person-bearing source.
pub const PERSON_SOURCES: [(&str, &str); 5] = [
    ("crm_customers", "crm_record_id"),
    ("web_events", "event_id"),
    ("orders", "order_id"),
    ("email_events", "event_id"),
    ("consents", "consent_id"),
];

/// record_id -> person_id for one source, from the truth.
pub fn persons_of(truth: &Table, source: &str) -> BTreeMap<String, String> {
    let sources = truth.strings("source");
    let records = truth.strings("record_id");
    let persons = truth.strings("person_id");
    (0..truth.len())
        .filter(|&i| sources[i] == source)
        .map(|i| (records[i].to_owned(), persons[i].to_owned()))
        .collect()
}
