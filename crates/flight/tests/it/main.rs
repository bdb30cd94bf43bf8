//! The Flight SQL server in process, driven by arrow-flight's own Flight SQL client.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, FlightEndpoint, FlightInfo, Ticket,
};
use cdphub_flight::FlightServer;
use cdphub_flight::engine::Engine;
use cdphub_lake::delta::{self, DeltaLocation};
use cdphub_lake::{Catalog, Lake, Overrides, Project};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

struct Harness {
    _dir: tempfile::TempDir,
    project: Project,
    lake: Lake,
    url: String,
    engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

const ADMIN_PASSWORD: &str = "admin-password-1";
const ANALYST_PASSWORD: &str = "analyst-password-1";

async fn start() -> Harness {
    start_with("").await
}

/// A server whose `[server]` table also has `server` (e.g. `query-timeout = "42s"`).
async fn start_with(server: &str) -> Harness {
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
{server}

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
    let engine = server.engine();
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
        engine,
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

// ------------------------------------------------------------------ GetSqlInfo ---

/// The int32 answers of GetSqlInfo for `infos`, by info id.
async fn int32_sql_infos(
    client: &mut FlightSqlServiceClient<Channel>,
    infos: Vec<SqlInfo>,
) -> std::collections::HashMap<u32, i32> {
    let info = client.get_sql_info(infos).await.unwrap();
    let mut out = std::collections::HashMap::new();
    for endpoint in info.endpoint {
        let batches: Vec<RecordBatch> = client
            .do_get(endpoint.ticket.unwrap())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for batch in batches {
            let names = batch
                .column(0)
                .as_primitive::<arrow::datatypes::UInt32Type>();
            let values = batch
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::UnionArray>()
                .unwrap();
            for row in 0..batch.num_rows() {
                let value = values.value(row);
                let value = value
                    .as_any()
                    .downcast_ref::<arrow::array::Int32Array>()
                    .expect("an int32 answer");
                out.insert(names.value(row), value.value(0));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_sql_info_reports_the_configured_statement_timeout() {
    // Two servers in one process, with different timeouts: each answers its own.
    for (config, millis) in [
        ("query-timeout = \"42s\"", 42_000),
        ("query-timeout = \"7m\"", 420_000),
    ] {
        let harness = start_with(config).await;
        let mut analyst = harness.analyst().await;
        let infos = int32_sql_infos(
            &mut analyst,
            vec![
                SqlInfo::FlightSqlServerStatementTimeout,
                SqlInfo::FlightSqlServerTransactionTimeout,
            ],
        )
        .await;
        assert_eq!(
            infos[&(SqlInfo::FlightSqlServerStatementTimeout as u32)],
            millis,
            "FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT is server.query-timeout in milliseconds ({config})"
        );
        assert_eq!(
            infos[&(SqlInfo::FlightSqlServerTransactionTimeout as u32)],
            0,
            "no transactions, hence no transaction timeout"
        );
        harness.shutdown().await;
    }
}

// ---------------------------------------------------------------------- cancel ---

const ENDLESS: &str = "SELECT count(*) AS n FROM generate_series(1, 100000000000)";

impl Harness {
    /// Another connection for the session of `client` (same bearer token).
    async fn same_session(
        &self,
        client: &FlightSqlServiceClient<Channel>,
    ) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut other = FlightSqlServiceClient::new(channel);
        other.set_token(client.token().unwrap().clone());
        other
    }

    /// Waits until `check` holds on the engine, or fails after 30 s.
    async fn wait_for(&self, what: &str, check: impl Fn(&Engine) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !check(&self.engine) {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// CancelFlightInfo: the CancelStatus, or the gRPC error.
async fn cancel_flight_info(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Result<i32, tonic::Status> {
    let body = CancelFlightInfoRequest::new(info.clone()).encode_to_vec();
    let mut results = client
        .do_action(Action::new("CancelFlightInfo", body))
        .await
        .map_err(to_status)?;
    let result = results.message().await?.expect("one result");
    Ok(CancelFlightInfoResult::decode(result.body).unwrap().status)
}

/// The legacy Flight SQL CancelQuery action: the CancelResult, or the gRPC error.
async fn cancel_query(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Result<i32, tonic::Status> {
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    let mut results = client
        .do_action(Action::new("CancelQuery", request.as_any().encode_to_vec()))
        .await
        .map_err(to_status)?;
    let result = results.message().await?.expect("one result");
    let any = arrow_flight::sql::Any::decode(result.body).unwrap();
    Ok(any
        .unpack::<ActionCancelQueryResult>()
        .unwrap()
        .unwrap()
        .result)
}

/// Streams `info` to the end on its own connection; the outcome, once over.
fn stream_in_background(
    mut client: FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> tokio::task::JoinHandle<Result<Vec<RecordBatch>, tonic::Status>> {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    tokio::spawn(async move {
        let stream = client.do_get(ticket).await.map_err(to_status)?;
        stream.try_collect().await.map_err(to_status)
    })
}

const CANCELLED: i32 = 1; // CANCEL_STATUS_CANCELLED, CANCEL_RESULT_CANCELLED
const NOT_CANCELLABLE: i32 = 3; // CANCEL_STATUS_NOT_CANCELLABLE, CANCEL_RESULT_NOT_CANCELLABLE

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_only_reaches_the_queries_of_the_user_who_runs_them() {
    let harness = start().await;
    let mut admin = harness.admin().await;
    let mut analyst = harness.analyst().await;

    // The admin starts a query that runs until it is cancelled.
    let info = admin.execute(ENDLESS.to_string(), None).await.unwrap();
    let running = stream_in_background(harness.same_session(&admin).await, &info);
    harness
        .wait_for("the query runs", |e| e.running_queries() == 1)
        .await;

    // Another user holding the FlightInfo (copied, leaked, or forged with the same id) cannot
    // cancel it, by either action; the answer is the one an unknown id gets.
    let unknown = FlightInfo::new().with_endpoint(
        FlightEndpoint::new().with_ticket(forged_ticket(&uuid::Uuid::new_v4().to_string())),
    );
    let not_found = cancel_flight_info(&mut analyst, &unknown)
        .await
        .unwrap_err();
    assert_eq!(not_found.code(), Code::NotFound, "{not_found}");
    for attempt in [
        cancel_flight_info(&mut analyst, &info).await,
        cancel_query(&mut analyst, &info).await,
    ] {
        let err = attempt.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err}");
        assert_eq!(
            err.message(),
            not_found.message(),
            "same answer as an unknown id"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !running.is_finished(),
        "another user's cancel stopped the query"
    );
    assert_eq!(harness.engine.running_queries(), 1);

    // Its own user cancels it.
    assert_eq!(
        cancel_flight_info(&mut admin, &info).await.unwrap(),
        CANCELLED
    );
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the cancelled query ends")
        .unwrap();
    let err = outcome.unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    assert_eq!(
        cancel_flight_info(&mut admin, &info).await.unwrap(),
        NOT_CANCELLABLE
    );
    assert_eq!(
        cancel_query(&mut admin, &info).await.unwrap(),
        NOT_CANCELLABLE
    );
    // Over is over for the other user too: still nothing of theirs.
    assert_eq!(
        cancel_query(&mut analyst, &info).await.unwrap_err().code(),
        Code::NotFound
    );

    // Before it starts: another user's cancel does not pre-empt the query ...
    let info = admin
        .execute("SELECT 42 AS answer".to_string(), None)
        .await
        .unwrap();
    assert_eq!(
        cancel_flight_info(&mut analyst, &info)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let answer = stream_in_background(harness.same_session(&admin).await, &info)
        .await
        .unwrap()
        .expect("another user's cancel did not touch the query");
    assert_eq!(answer[0].num_rows(), 1);

    // ... while the same user, from another session, may cancel it early (legacy action).
    let info = admin.execute(ENDLESS.to_string(), None).await.unwrap();
    let mut admin_elsewhere = harness.admin().await;
    assert_eq!(
        cancel_query(&mut admin_elsewhere, &info).await.unwrap(),
        CANCELLED
    );
    let err = stream_in_background(harness.same_session(&admin).await, &info)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    assert_eq!(harness.engine.running_queries(), 0);
    harness.shutdown().await;
}

/// A statement ticket as this server writes them, with any query id.
fn forged_ticket(id: &str) -> Ticket {
    let handle = serde_json::json!({ "id": id, "sql": ENDLESS }).to_string();
    let ticket = TicketStatementQuery {
        statement_handle: handle.into_bytes().into(),
    };
    Ticket::new(ticket.as_any().encode_to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_ticket_runs_as_its_redeemer_and_is_cancelled_by_them_only() {
    let harness = start().await;
    let mut admin = harness.admin().await;
    let mut analyst = harness.analyst().await;
    let info = admin.execute(ENDLESS.to_string(), None).await.unwrap();
    // The analyst redeems the admin's ticket: the query runs as the analyst, under the same id.
    let analysts = stream_in_background(harness.same_session(&analyst).await, &info);
    harness
        .wait_for("the analyst's query runs", |e| e.running_queries() == 1)
        .await;
    let admins = stream_in_background(harness.same_session(&admin).await, &info);
    harness
        .wait_for("both run", |e| e.running_queries() == 2)
        .await;
    // The admin's cancel stops the admin's execution only.
    assert_eq!(
        cancel_flight_info(&mut admin, &info).await.unwrap(),
        CANCELLED
    );
    let err = admins.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!analysts.is_finished());
    assert_eq!(harness.engine.running_queries(), 1);
    assert_eq!(
        cancel_flight_info(&mut analyst, &info).await.unwrap(),
        CANCELLED
    );
    let err = analysts.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    harness.shutdown().await;
}

// --------------------------------------------------------- clients that go away ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_frees_its_slot_and_is_audited_as_disconnected() {
    let harness = start_with("max-concurrent-queries = 1\nquery-timeout = \"120s\"").await;
    assert_eq!(harness.engine.free_slots(), 1);

    // 1. Mid-stream: a large result, one batch read, then the client is gone.
    let streamed = "SELECT value, 'gone-mid-stream' AS marker FROM generate_series(1, 50000000)";
    {
        let mut client = harness.admin().await;
        let info = client.execute(streamed.to_string(), None).await.unwrap();
        let mut stream = client
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap();
        let first = futures::StreamExt::next(&mut stream)
            .await
            .unwrap()
            .unwrap();
        assert!(first.num_rows() > 0);
        assert_eq!(
            harness.engine.free_slots(),
            0,
            "the query holds the only slot"
        );
        drop(stream);
        drop(client);
    }
    harness
        .wait_for("the slot is released", |e| {
            e.free_slots() == 1 && e.running_queries() == 0
        })
        .await;

    // 2. While waiting for a slot: the only slot is busy, the second client gives up.
    let queued = "SELECT 'gone-while-queued' AS marker";
    let mut holder = harness.admin().await;
    let info = holder.execute(HOLDER.to_string(), None).await.unwrap();
    let mut held = holder
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    futures::StreamExt::next(&mut held).await.unwrap().unwrap();
    let mut impatient = harness.admin().await;
    let info = impatient.execute(queued.to_string(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let waiting = tokio::spawn(async move { impatient.do_get(ticket).await.map(|_| ()) });
    harness
        .wait_for("the second query waits for the slot", |e| {
            e.running_queries() == 2
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second query must wait for the slot"
    );
    // The client gives up: its call and its connection are dropped.
    waiting.abort();
    harness
        .wait_for("the queued query is forgotten", |e| {
            e.running_queries() == 1
        })
        .await;
    drop(held);
    drop(holder);
    harness
        .wait_for("the slot is released again", |e| {
            e.free_slots() == 1 && e.running_queries() == 0
        })
        .await;

    // 3. The server keeps serving, at once: the single slot is free.
    let mut admin = harness.admin().await;
    let started = std::time::Instant::now();
    let two = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run(&mut admin, "SELECT 2 AS n"),
    )
    .await
    .expect("a new query gets the slot promptly")
    .unwrap();
    assert_eq!(
        two[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        2
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // 4. Each query that lost its client is in hub.audit_log as `disconnected`.
    let harness = harness.shutdown().await;
    let catalog = Catalog::open(&harness.project, harness.lake.clone())
        .await
        .unwrap();
    let batches = catalog
        .ctx
        .sql(
            "SELECT sql, status, rows, bytes FROM hub.audit_log \
             WHERE sql LIKE '%gone-%' OR sql LIKE '%holds-the-slot%' ORDER BY started_at",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let sqls = strings(&batches, "sql");
    let statuses = strings(&batches, "status");
    let rows = strings(&batches, "rows");
    let bytes = strings(&batches, "bytes");
    let record = |sql: &str| {
        let i = sqls
            .iter()
            .position(|s| s.as_deref() == Some(sql))
            .unwrap_or_else(|| panic!("no audit record of {sql}: {sqls:?}"));
        let number = |v: &Option<String>| v.as_deref().unwrap().parse::<i64>().unwrap();
        (
            statuses[i].clone().unwrap(),
            number(&rows[i]),
            number(&bytes[i]),
        )
    };
    assert_eq!(sqls.len(), 3, "{sqls:?} {statuses:?}");
    let (status, rows, bytes) = record(streamed);
    assert_eq!(status, "disconnected");
    assert!(
        rows > 0 && rows < 50_000_000,
        "{rows} rows before the client left"
    );
    assert!(bytes > 0);
    let (status, rows, _) = record(queued);
    assert_eq!(status, "disconnected", "a query that never got its slot");
    assert_eq!(rows, 0);
    assert_eq!(record(HOLDER).0, "disconnected");
}

const HOLDER: &str = "SELECT value, 'holds-the-slot' AS marker FROM generate_series(1, 50000000)";

// ------------------------------------------------- PII through metadata paths ---

/// Every cell of `batches`, as text (NULL as `None`).
fn cells(batches: &[RecordBatch]) -> Vec<Option<String>> {
    let options = arrow::util::display::FormatOptions::default();
    let mut out = Vec::new();
    for batch in batches {
        for column in batch.columns() {
            let formatter =
                arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &options).unwrap();
            for row in 0..column.len() {
                out.push(
                    column
                        .is_valid(row)
                        .then(|| formatter.value(row).to_string()),
                );
            }
        }
    }
    out
}

/// Rows of `batches` as `column -> text`, for the columns asked.
fn rows_of(batches: &[RecordBatch], columns: &[&str]) -> Vec<Vec<Option<String>>> {
    let values: Vec<Vec<Option<String>>> = columns.iter().map(|c| strings(batches, c)).collect();
    (0..values.first().map_or(0, Vec::len))
        .map(|row| values.iter().map(|v| v[row].clone()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_schema_describe_and_session_views_never_show_clear_pii() {
    let harness = start().await;
    let mut admin = harness.admin().await;
    let mut analyst = harness.analyst().await;
    let view = "CREATE VIEW contacts AS SELECT unified_id, email AS contact, first_name, birth_date, city FROM marts.customer_profiles";
    let on_view = "CREATE VIEW known_contacts AS SELECT contact, birth_date FROM contacts WHERE contact IS NOT NULL";

    // Every clear PII value, as the admin (role with `pii`) sees it through the same views:
    // the leak detector below must see them, or it would prove nothing.
    run(&mut admin, view).await.unwrap();
    run(&mut admin, on_view).await.unwrap();
    let clear = run(
        &mut admin,
        "SELECT email, first_name, CAST(birth_date AS VARCHAR) AS birth_date FROM marts.customer_profiles",
    )
    .await
    .unwrap();
    let secrets: Vec<String> = cells(&clear).into_iter().flatten().collect();
    assert_eq!(secrets.len(), 7, "{secrets:?}");
    let leaks = |found: &[Option<String>]| -> Vec<String> {
        found
            .iter()
            .flatten()
            .filter(|cell| {
                secrets
                    .iter()
                    .any(|s| *cell == s || (s.len() >= 5 && cell.contains(s.as_str())))
            })
            .cloned()
            .collect()
    };
    let admin_view = run(&mut admin, "SELECT * FROM cdphub.public.known_contacts")
        .await
        .unwrap();
    assert!(!leaks(&cells(&admin_view)).is_empty(), "positive control");

    // The analyst's session: the same views, and every metadata path to them and the table.
    run(&mut analyst, view).await.unwrap();
    run(&mut analyst, on_view).await.unwrap();
    let paths = [
        "SELECT * FROM contacts",
        "SELECT * FROM public.contacts",
        "SELECT * FROM cdphub.public.contacts",
        "SELECT * FROM known_contacts",
        "SELECT * FROM cdphub.public.known_contacts",
        "SELECT c.* FROM cdphub.public.contacts c JOIN marts.customer_profiles p ON c.contact = p.email",
        "SELECT * FROM information_schema.views",
        "SELECT * FROM cdphub.information_schema.views",
        "SELECT * FROM information_schema.columns",
        "SELECT * FROM cdphub.information_schema.columns",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM information_schema.schemata",
        "SELECT * FROM information_schema.df_settings",
        "SHOW TABLES",
        "SHOW COLUMNS FROM marts.customer_profiles",
        "SHOW COLUMNS FROM contacts",
        "DESCRIBE marts.customer_profiles",
        "DESCRIBE contacts",
        "DESCRIBE cdphub.public.known_contacts",
        "DESCRIBE SELECT email FROM marts.customer_profiles",
        "EXPLAIN SELECT * FROM known_contacts WHERE contact LIKE '%@%'",
    ];
    for sql in paths {
        let found = run(&mut analyst, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let leaked = leaks(&cells(&found));
        assert!(leaked.is_empty(), "{sql} shows clear PII: {leaked:?}");
    }

    // Through the views, values are pseudonyms or NULL, and cannot be probed for.
    let through = run(
        &mut analyst,
        "SELECT contact, first_name, birth_date FROM cdphub.public.contacts ORDER BY unified_id",
    )
    .await
    .unwrap();
    let contacts = strings(&through, "contact");
    assert!(
        contacts[0].as_deref().unwrap().starts_with("pii:"),
        "{contacts:?}"
    );
    assert_eq!(contacts[2], None);
    assert_eq!(strings(&through, "birth_date"), vec![None, None, None]);
    let probe = run(
        &mut analyst,
        "SELECT count(*) AS n FROM known_contacts WHERE contact = 'ana@example.com'",
    )
    .await
    .unwrap();
    assert_eq!(strings(&probe, "n"), vec![Some("0".into())]);

    // The masked columns stay listed wherever columns are listed, with the types the admin
    // sees (the table's own), nullable since masking may give NULL, without defaults.
    let listing = "SELECT table_name, column_name, data_type, is_nullable, column_default \
         FROM information_schema.columns \
         WHERE table_name IN ('customer_profiles', 'contacts', 'known_contacts') \
         ORDER BY table_schema, table_name, ordinal_position";
    let columns = [
        "table_name",
        "column_name",
        "data_type",
        "is_nullable",
        "column_default",
    ];
    let listed = rows_of(&run(&mut analyst, listing).await.unwrap(), &columns);
    let listed_for_admin = rows_of(&run(&mut admin, listing).await.unwrap(), &columns);
    let row_of = |rows: &[Vec<Option<String>>], table: &str, column: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(table) && r[1].as_deref() == Some(column))
            .unwrap_or_else(|| panic!("{table}.{column} is not listed: {rows:?}"))
            .clone()
    };
    for (table, column, text) in [
        ("customer_profiles", "email", true),
        ("customer_profiles", "first_name", true),
        ("customer_profiles", "birth_date", false),
        ("contacts", "contact", true),
        ("contacts", "first_name", true),
        ("contacts", "birth_date", false),
        ("known_contacts", "contact", true),
        ("known_contacts", "birth_date", false),
    ] {
        let row = row_of(&listed, table, column);
        assert_eq!(
            row[2],
            row_of(&listed_for_admin, table, column)[2],
            "{table}.{column} keeps its type"
        );
        let data_type = row[2].clone().unwrap();
        assert!(
            if text {
                data_type.starts_with("Utf8")
            } else {
                data_type == "Date32"
            },
            "{row:?}"
        );
        assert_eq!(
            row[3].as_deref(),
            Some("YES"),
            "a masked column is nullable: {row:?}"
        );
        assert_eq!(row[4], None, "no column default: {row:?}");
    }
    assert_eq!(
        listed.len(),
        listed_for_admin.len(),
        "the analyst sees every column the admin sees"
    );
    // DESCRIBE and SHOW COLUMNS list the same columns and types as information_schema.
    for (sql, table) in [
        ("DESCRIBE marts.customer_profiles", "customer_profiles"),
        ("DESCRIBE contacts", "contacts"),
        (
            "SHOW COLUMNS FROM marts.customer_profiles",
            "customer_profiles",
        ),
        ("SHOW COLUMNS FROM contacts", "contacts"),
    ] {
        let shown = rows_of(
            &run(&mut analyst, sql).await.unwrap(),
            &["column_name", "data_type"],
        );
        let expected: Vec<Vec<Option<String>>> = listed
            .iter()
            .filter(|r| r[0].as_deref() == Some(table))
            .map(|r| vec![r[1].clone(), r[2].clone()])
            .collect();
        assert_eq!(shown, expected, "{sql}");
        assert!(
            shown.iter().any(|r| r[1].as_deref() == Some("Date32")),
            "{sql}: {shown:?}"
        );
    }
    // A session view is listed with the SQL it was created with, and nothing else.
    let views = run(
        &mut analyst,
        "SELECT table_name, definition FROM information_schema.views WHERE table_schema = 'public' ORDER BY table_name",
    )
    .await
    .unwrap();
    assert_eq!(
        rows_of(&views, &["table_name", "definition"]),
        vec![
            vec![Some("contacts".into()), Some(view.into())],
            vec![Some("known_contacts".into()), Some(on_view.into())],
        ]
    );
    // DESCRIBE goes through the role's catalog like any query.
    let err = run(&mut analyst, "DESCRIBE hub.audit_log")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    harness.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_slot_at_the_query_timeout() {
    let harness = start_with("max-concurrent-queries = 1\nquery-timeout = \"2s\"").await;
    let stalled_sql = "SELECT value, 'stops-reading' AS marker FROM generate_series(1, 50000000)";
    // One batch read, then the client neither reads nor closes: HTTP/2 flow control stops
    // the server's sends, and nothing polls the query's stream any more.
    let mut stalled = harness.admin().await;
    let info = stalled
        .execute(stalled_sql.to_string(), None)
        .await
        .unwrap();
    let mut stream = stalled
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    futures::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(harness.engine.free_slots(), 0);
    let started = std::time::Instant::now();
    harness
        .wait_for(
            "the timeout frees the slot of a client that stopped reading",
            |e| e.free_slots() == 1 && e.running_queries() == 0,
        )
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Another client gets the slot at once.
    let mut admin = harness.admin().await;
    let two = run(&mut admin, "SELECT 2 AS n").await.unwrap();
    assert_eq!(strings(&two, "n"), vec![Some("2".into())]);
    // When the stalled client reads again, it gets what was buffered, then the timeout.
    let rest: Result<Vec<RecordBatch>, _> = stream.try_collect().await;
    let err = to_status(rest.unwrap_err());
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(err.message().contains("server.query-timeout"), "{err}");
    drop(stalled);

    let harness = harness.shutdown().await;
    let catalog = Catalog::open(&harness.project, harness.lake.clone())
        .await
        .unwrap();
    let batches = catalog
        .ctx
        .sql("SELECT status FROM hub.audit_log WHERE sql LIKE '%stops-reading%'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(strings(&batches, "status"), vec![Some("timeout".into())]);
}
