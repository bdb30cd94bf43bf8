//! The Flight SQL server in process, driven by arrow-flight's own Flight SQL client.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use cdphub_flight::FlightServer;
use cdphub_lake::delta::{self, DeltaLocation};
use cdphub_lake::{Catalog, Lake, Overrides, Project};
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::Channel;

struct Harness {
    _dir: tempfile::TempDir,
    project: Project,
    lake: Lake,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

const ADMIN_PASSWORD: &str = "admin-password-1";
const ANALYST_PASSWORD: &str = "analyst-password-1";

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let admin = cdphub_flight::hash_password(ADMIN_PASSWORD).unwrap();
    let analyst = cdphub_flight::hash_password(ANALYST_PASSWORD).unwrap();
    std::fs::write(
        dir.path().join("cdphub.toml"),
        format!(
            r#"
[lake]
url = "lake"

[server]
port = 0

[roles.admin]
schemas = ["*"]
pii = true
ingest = true

[roles.analyst]
schemas = ["marts"]

[users.admin]
role = "admin"
password-hash = "{admin}"

[users.analyst]
role = "analyst"
password-hash = "{analyst}"

[pii]
columns = ["email", "first_name", "birth_date"]
"#
        ),
    )
    .unwrap();
    let project = Project::load_with_env(dir.path(), &Overrides::default(), |_| None).unwrap();
    let lake = Lake::open(&project.config.lake, &project.dir).unwrap();
    publish_profiles(&lake).await;
    let server = FlightServer::bind(project.clone(), lake.clone())
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Harness {
        _dir: dir,
        project,
        lake,
        url,
        stop: Some(stop),
        handle: Some(handle),
    }
}

impl Harness {
    async fn client(&self, user: &str, password: &str) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = FlightSqlServiceClient::new(channel);
        client.handshake(user, password).await.unwrap();
        client
    }

    async fn admin(&self) -> FlightSqlServiceClient<Channel> {
        self.client("admin", ADMIN_PASSWORD).await
    }

    async fn analyst(&self) -> FlightSqlServiceClient<Channel> {
        self.client("analyst", ANALYST_PASSWORD).await
    }

    async fn shutdown(mut self) -> Self {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap();
        self
    }
}

async fn publish_profiles(lake: &Lake) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("unified_id", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("first_name", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("city", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["u1", "u2", "u3"])),
            Arc::new(StringArray::from(vec![
                Some("ana@example.com"),
                Some("bob@example.com"),
                None,
            ])),
            Arc::new(StringArray::from(vec![
                Some("Ana"),
                Some("Bob"),
                Some("Chloé"),
            ])),
            Arc::new(Date32Array::from(vec![Some(7000), None, Some(9000)])),
            Arc::new(StringArray::from(vec!["Lyon", "Paris", "Lille"])),
        ],
    )
    .unwrap();
    delta::append(
        lake,
        &DeltaLocation::curated("marts", "customer_profiles"),
        vec![batch],
    )
    .await
    .unwrap();
}

async fn run(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(to_status)?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client
            .do_get(endpoint.ticket.unwrap())
            .await
            .map_err(to_status)?;
        let mut got: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| tonic::Status::unknown(e.to_string()))?;
        batches.append(&mut got);
    }
    Ok(batches)
}

fn to_status(error: arrow_flight::error::FlightError) -> tonic::Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    }
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array =
                arrow::compute::cast(b.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
            let array = array.as_string::<i32>().clone();
            (0..array.len())
                .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_is_masked_by_column_name_for_roles_without_pii() {
    let harness = start().await;
    let mut admin = harness.admin().await;
    let mut analyst = harness.analyst().await;
    let sql = "SELECT unified_id, email, first_name, birth_date, city FROM marts.customer_profiles ORDER BY unified_id";

    let clear = run(&mut admin, sql).await.unwrap();
    assert_eq!(
        strings(&clear, "email"),
        vec![
            Some("ana@example.com".into()),
            Some("bob@example.com".into()),
            None
        ]
    );

    let masked = run(&mut analyst, sql).await.unwrap();
    let emails = strings(&masked, "email");
    assert!(
        emails[0].as_deref().unwrap().starts_with("pii:"),
        "{emails:?}"
    );
    assert_ne!(emails[0], emails[1]);
    assert_eq!(emails[2], None, "NULL stays NULL");
    assert!(
        strings(&masked, "first_name")
            .iter()
            .flatten()
            .all(|v| v.starts_with("pii:"))
    );
    assert_eq!(
        strings(&masked, "birth_date"),
        vec![None, None, None],
        "non-text PII becomes NULL"
    );
    assert_eq!(
        strings(&masked, "city"),
        vec![
            Some("Lyon".into()),
            Some("Paris".into()),
            Some("Lille".into())
        ],
        "other columns stay in clear"
    );

    // Filters are evaluated on the masked value: the clear value cannot be probed for.
    let probe = "SELECT count(*) AS n FROM marts.customer_profiles WHERE email = 'ana@example.com'";
    let n = |b: &[RecordBatch]| {
        b[0].column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    };
    assert_eq!(n(&run(&mut admin, probe).await.unwrap()), 1);
    assert_eq!(n(&run(&mut analyst, probe).await.unwrap()), 0);
    // Self-joins and functions only ever see pseudonyms.
    let joined = run(
        &mut analyst,
        "SELECT upper(a.email) AS e FROM marts.customer_profiles a JOIN marts.customer_profiles b ON a.email = b.email",
    )
    .await
    .unwrap();
    assert_eq!(strings(&joined, "e").len(), 2);
    assert!(
        strings(&joined, "e")
            .iter()
            .flatten()
            .all(|v| v.starts_with("PII:"))
    );
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_names_the_table_and_the_audit_log_is_flushed_on_shutdown() {
    let harness = start().await;
    let mut analyst = harness.analyst().await;
    let err = run(&mut analyst, "SELECT * FROM hub.audit_log")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(err.message().contains("hub.audit_log"), "{err}");
    let err = run(&mut analyst, "SELECT * FROM marts.nope")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let ok = run(&mut analyst, "SELECT 'marker-42' AS m").await.unwrap();
    assert_eq!(ok[0].num_rows(), 1);

    let harness = harness.shutdown().await;
    // Clean shutdown flushed every record: read hub.audit_log straight from the lake.
    let catalog = Catalog::open(&harness.project, harness.lake.clone())
        .await
        .unwrap();
    let batches = catalog
        .ctx
        .sql("SELECT \"user\", status, kind FROM hub.audit_log WHERE \"user\" = 'analyst' ORDER BY started_at")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let statuses = strings(&batches, "status");
    assert_eq!(
        statuses,
        vec![
            Some("permission_denied".into()),
            Some("not_found".into()),
            Some("ok".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_discovers_raw_folders_written_by_ingest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cdphub.toml"), "[lake]\nurl = \"lake\"\n").unwrap();
    let project = Project::load_with_env(dir.path(), &Overrides::default(), |_| None).unwrap();
    let folder = dir.path().join("lake/raw/footfall");
    std::fs::create_dir_all(&folder).unwrap();
    let batch = RecordBatch::try_from_iter(vec![(
        "visits",
        Arc::new(arrow::array::Int64Array::from(vec![3, 4])) as Arc<dyn Array>,
    )])
    .unwrap();
    write_parquet(&folder.join("part-1.parquet"), &batch);
    let lake = Lake::open(&project.config.lake, &project.dir).unwrap();
    let catalog = Catalog::open(&project, lake).await.unwrap();
    let rows = catalog
        .ctx
        .sql("SELECT sum(visits) AS v FROM raw.footfall")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        rows[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        7
    );
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}
