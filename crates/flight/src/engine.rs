//! The query engine behind the Flight SQL service: per-session secured contexts, planning with
//! statement checks, streaming execution under memory, time and concurrency limits, cancel.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::SqlInfoData;
use cdphub_lake::serve_config::{ServerConfig, UserConfig};
use cdphub_lake::{CATALOG, Catalog, Lake, Project};
use chrono::Utc;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    DescribeAlias, Expr as SqlExpr, ObjectType, Statement as SqlStatement, Value,
    visit_expressions_mut,
};
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::access::AccessPolicy;
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::{Session, TokenStore, verify_password};
use crate::error::{Result, ServeError};
use crate::secure::{GuardedTable, MaskFunction, secured_catalogs};

pub type FlightDataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>;

/// The catalog every session reads, swapped atomically when it is reloaded.
pub struct CatalogHandle {
    project: Project,
    lake: Lake,
    current: RwLock<Arc<Catalog>>,
}

impl CatalogHandle {
    pub async fn open(project: Project, lake: Lake) -> Result<Self> {
        let catalog = Catalog::open(&project, lake.clone()).await?;
        Ok(Self {
            project,
            lake,
            current: RwLock::new(Arc::new(catalog)),
        })
    }

    pub fn current(&self) -> Arc<Catalog> {
        self.current.read().expect("catalog lock").clone()
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Opens the catalog again (new Delta versions, new raw files) and swaps it in. Queries
    /// already planned keep the snapshot they started with.
    pub async fn reload(&self) -> Result<()> {
        let catalog = Catalog::open(&self.project, self.lake.clone()).await?;
        *self.current.write().expect("catalog lock") = Arc::new(catalog);
        Ok(())
    }
}

/// Whether a statement reads or (for the session's temporary views) defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Query,
    Ddl,
}

pub struct Planned {
    pub ctx: SessionContext,
    pub plan: LogicalPlan,
    pub kind: StatementKind,
}

/// A statement to run, as a DoGet will.
pub struct QueryRequest {
    pub query_id: String,
    pub sql: String,
    /// `statement` or `prepared`.
    pub kind: &'static str,
    /// Bound parameters: one execution per row.
    pub params: Option<RecordBatch>,
    pub client: Option<String>,
}

/// A prepared statement: re-planned on each execution against the current catalog.
pub struct Prepared {
    pub session_id: String,
    pub sql: String,
    pub kind: StatementKind,
    pub dataset_schema: SchemaRef,
    pub parameter_schema: SchemaRef,
    pub params: Mutex<Option<RecordBatch>>,
}

pub struct Engine {
    pub catalogs: Arc<CatalogHandle>,
    pub policy: Arc<AccessPolicy>,
    users: BTreeMap<String, UserConfig>,
    pub tokens: TokenStore,
    pub config: ServerConfig,
    /// What GetSqlInfo answers, from `config`.
    pub sql_info: SqlInfoData,
    pub audit: AuditLog,
    mask: Arc<ScalarUDF>,
    slots: Arc<Semaphore>,
    disk: Arc<DiskManager>,
    /// Running, finished and cancellable queries, by user and query id; one lock so that a
    /// cancel and the start of the same query cannot interleave.
    queries: Mutex<Queries>,
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
}

impl Engine {
    pub fn new(catalogs: Arc<CatalogHandle>, audit: AuditLog) -> Result<Self> {
        let config = catalogs.project().config.clone();
        let server = config.server.clone();
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mode = match &server.spill_dir {
            Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
            None => DiskManagerMode::OsTmpDirectory,
        };
        let disk = DiskManager::builder()
            .with_mode(mode)
            .build()
            .map_err(|e| ServeError::datafusion("spill directory", e))?;
        Ok(Self {
            policy: Arc::new(AccessPolicy::from_config(&config)),
            users: config.users.clone(),
            tokens: TokenStore::new(server.token_ttl),
            slots: Arc::new(Semaphore::new(server.max_concurrent_queries)),
            sql_info: crate::sql_info::sql_info(&server),
            config: server,
            catalogs,
            audit,
            mask: MaskFunction::udf(key),
            disk: Arc::new(disk),
            queries: Mutex::new(Queries::new()),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    // ------------------------------------------------------------------ auth ---

    /// Checks user and password against the config; a token on success.
    pub fn login(&self, user: &str, password: &str) -> Result<(String, Arc<Session>)> {
        let refused = || ServeError::Unauthenticated("wrong user name or password".to_string());
        let Some(config) = self.users.get(user) else {
            // Same cost as a real check, so that timing does not tell which users exist.
            let _ = verify_password(password, dummy_hash());
            return Err(refused());
        };
        if !verify_password(password, &config.password_hash) {
            return Err(refused());
        }
        let role = self
            .policy
            .roles
            .get(&config.role)
            .cloned()
            .ok_or_else(|| ServeError::Internal(format!("role {} vanished", config.role)))?;
        Ok(self.tokens.issue(user, role))
    }

    // --------------------------------------------------------------- context ---

    /// A fresh context for one request of `session`: the role's secured catalog, its own
    /// memory pool, the shared spill directory and object stores.
    pub fn context(&self, session: &Session) -> Result<SessionContext> {
        let catalog = self.catalogs.current();
        let base = catalog.ctx.state();
        let base_runtime = base.runtime_env().clone();
        let limit = usize::try_from(self.config.query_memory_limit).unwrap_or(usize::MAX);
        let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            NonZeroUsize::new(3).expect("3 > 0"),
        ));
        let mut runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(pool)
            .with_object_store_registry(base_runtime.object_store_registry.clone())
            .build()
            .map_err(|e| ServeError::datafusion("query runtime", e))?;
        runtime.disk_manager = self.disk.clone();
        runtime.cache_manager = base_runtime.cache_manager.clone();
        let inner = base
            .catalog_list()
            .catalog(CATALOG)
            .ok_or_else(|| ServeError::Internal("the cdphub catalog is missing".into()))?;
        let catalogs = secured_catalogs(
            inner,
            CATALOG,
            session.role.clone(),
            self.policy.clone(),
            session.scratch.clone(),
            self.mask.clone(),
        );
        let mut config = base.config().clone();
        // Plain Utf8/Binary for clients (JDBC, ODBC) that do not read the view types.
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        let state = SessionStateBuilder::new_from_existing(base)
            .with_config(config)
            .with_runtime_env(Arc::new(runtime))
            .with_catalog_list(catalogs)
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    // -------------------------------------------------------------- planning ---

    /// Parses, checks and plans one statement for `session`.
    pub async fn plan(&self, session: &Session, sql: &str) -> Result<Planned> {
        let ctx = self.context(session)?;
        let state = ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(sql, &dialect).map_err(|e| {
            ServeError::InvalidArgument(format!(
                "SQL does not parse: {}",
                crate::error::clean_message(&e)
            ))
        })?;
        let kind = classify(&statement)?;
        number_placeholders(&mut statement);
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| ServeError::datafusion("query", e))?;
        SQLOptions::new()
            .with_allow_ddl(kind == StatementKind::Ddl)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| ServeError::InvalidArgument(crate::error::clean_message(&e)))?;
        check_scans(&plan, &self.catalogs.current())?;
        Ok(Planned { ctx, plan, kind })
    }

    /// Runs a `CREATE VIEW` / `DROP VIEW` of the session.
    pub async fn run_ddl(&self, planned: Planned) -> Result<()> {
        planned
            .ctx
            .execute_logical_plan(planned.plan)
            .await
            .map_err(|e| ServeError::datafusion("statement", e))?;
        Ok(())
    }

    /// The schema a client will receive for `plan`.
    pub fn result_schema(plan: &LogicalPlan) -> SchemaRef {
        flight_schema(plan.schema().as_arrow())
    }

    // ------------------------------------------------------------- execution ---

    /// Plans and streams a query; the stream holds a concurrency slot, its own memory pool,
    /// the timeout and the cancel switch, and writes the audit record when it ends (or when the
    /// client goes away).
    pub async fn execute(
        self: &Arc<Self>,
        session: Arc<Session>,
        request: QueryRequest,
    ) -> Result<FlightDataStream> {
        // Until the stream exists, the client may go away (while the query waits for a slot or
        // is planned): dropping this future then records the query as `disconnected`, and
        // dropping the registration inside `start` takes it off the running queries.
        let mut starting = Starting {
            engine: self.clone(),
            audit: Some(AuditDraft::new(&session, &request)),
        };
        let started = self.start(&session, &request).await;
        let mut audit = starting.audit.take().expect("the draft is taken once");
        match started {
            Ok((stream, registration, permit, token, rows)) => Ok(Box::pin(Monitored::start(
                QueryRun {
                    inner: Some(stream),
                    memory_limit: self.config.query_memory_limit,
                    engine: self.clone(),
                    registration: Some(registration),
                    audit: Some(audit),
                    rows,
                    bytes: 0,
                    permit: Some(permit),
                    stopped: None,
                    waker: None,
                },
                self.config.query_timeout,
                token,
            ))),
            Err(error) => {
                audit.fail(&error);
                self.audit.record(audit.finish(0, 0));
                Err(error)
            }
        }
    }

    async fn start(
        self: &Arc<Self>,
        session: &Session,
        request: &QueryRequest,
    ) -> Result<(
        BoxStream<'static, Result<FlightData, FlightError>>,
        Registration,
        OwnedSemaphorePermit,
        CancellationToken,
        Arc<AtomicI64>,
    )> {
        let (registration, token) = self.register(session, &request.query_id)?;
        let permit = tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit
                .map_err(|_| ServeError::Internal("the server is shutting down".into()))?,
            _ = tokio::time::sleep(self.config.query_timeout) => {
                return Err(ServeError::Timeout(self.config.query_timeout));
            }
            _ = token.cancelled() => return Err(ServeError::Cancelled),
        };
        let planned = self.plan(session, &request.sql).await?;
        if planned.kind == StatementKind::Ddl {
            // DDL ran when the client asked for the FlightInfo; the result is empty.
            let schema = Arc::new(Schema::empty());
            let stream = FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(futures::stream::empty())
                .boxed();
            return Ok((
                stream,
                registration,
                permit,
                token,
                Arc::new(AtomicI64::new(0)),
            ));
        }
        let Planned { ctx, plan, .. } = planned;
        let frames = parameter_sets(&plan, request.params.as_ref())?;
        let state = ctx.state();
        let mut dataframes = Vec::with_capacity(frames.len().max(1));
        if frames.is_empty() {
            dataframes.push(DataFrame::new(state, plan));
        } else {
            for values in frames {
                let df = DataFrame::new(state.clone(), plan.clone())
                    .with_param_values(ParamValues::from(values))
                    .map_err(|e| ServeError::datafusion("binding parameters", e))?;
                dataframes.push(df);
            }
        }
        // Start the first execution now, so that planning errors surface before streaming.
        let mut dataframes = dataframes.into_iter();
        let first = dataframes.next().expect("at least one execution");
        let first = first
            .execute_stream()
            .await
            .map_err(|e| self.query_error(e))?;
        let schema = flight_schema(&first.schema());
        let rest = futures::stream::iter(dataframes)
            .then(|df| async move { df.execute_stream().await })
            .try_flatten();
        let batches = first.chain(rest.boxed());
        let rows = Arc::new(AtomicI64::new(0));
        let counter = rows.clone();
        let out_schema = schema.clone();
        let batches = batches
            .map(move |batch| {
                let batch = batch?;
                counter.fetch_add(batch.num_rows() as i64, Ordering::Relaxed);
                to_flight_batch(batch, &out_schema)
            })
            .map_err(|e: DataFusionError| FlightError::ExternalError(Box::new(e)));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .boxed();
        Ok((stream, registration, permit, token, rows))
    }

    fn query_error(&self, error: DataFusionError) -> ServeError {
        if matches!(error.find_root(), DataFusionError::ResourcesExhausted(_)) {
            return ServeError::MemoryExhausted {
                limit: human_size(self.config.query_memory_limit),
                detail: crate::error::clean_message(error.find_root()),
            };
        }
        ServeError::datafusion("query failed", error)
    }

    /// A query id for a ticket of `session`'s user: until the ticket is redeemed (or an hour
    /// has passed), that user may cancel the query before it starts.
    pub fn issue_query_id(&self, session: &Session) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.queries
            .lock()
            .expect("queries lock")
            .issued
            .insert(QueryKey::new(session, &id));
        id
    }

    /// Marks a query as running, unless its user cancelled it before it started.
    fn register(
        self: &Arc<Self>,
        session: &Session,
        query_id: &str,
    ) -> Result<(Registration, CancellationToken)> {
        let key = QueryKey::new(session, query_id);
        let mut queries = self.queries.lock().expect("queries lock");
        queries.issued.remove(&key);
        if queries.cancelled_early.remove(&key) {
            queries.finished.insert(key);
            return Err(ServeError::Cancelled);
        }
        let running = queries
            .running
            .entry(key.clone())
            .or_insert_with(|| Running {
                token: CancellationToken::new(),
                executions: 0,
            });
        // The same ticket redeemed twice at once: one cancel stops both.
        running.executions += 1;
        let token = running.token.clone();
        drop(queries);
        Ok((
            Registration {
                engine: self.clone(),
                key,
            },
            token,
        ))
    }

    fn forget(&self, key: &QueryKey) {
        let mut queries = self.queries.lock().expect("queries lock");
        if let Some(running) = queries.running.get_mut(key) {
            running.executions -= 1;
            if running.executions == 0 {
                queries.running.remove(key);
            }
        }
        queries.finished.insert(key.clone());
    }

    /// Cancels a query of `session`'s user: a running one, or one whose ticket this server issued
    /// to that user and that has not started yet. Queries of other users are not theirs to
    /// cancel and are answered exactly like ids this server never issued: `NotFound`.
    pub fn cancel(&self, session: &Session, query_id: &str) -> CancelOutcome {
        let key = QueryKey::new(session, query_id);
        let mut queries = self.queries.lock().expect("queries lock");
        if let Some(running) = queries.running.get(&key) {
            running.token.cancel();
            return CancelOutcome::Cancelled;
        }
        if queries.finished.contains(&key) {
            return CancelOutcome::NotCancellable;
        }
        if queries.cancelled_early.contains(&key) {
            return CancelOutcome::Cancelled;
        }
        if queries.issued.remove(&key) {
            queries.cancelled_early.insert(key);
            return CancelOutcome::Cancelled;
        }
        CancelOutcome::NotFound
    }

    pub fn running_queries(&self) -> usize {
        self.queries.lock().expect("queries lock").running.len()
    }

    /// Concurrency slots (`server.max-concurrent-queries`) free right now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    // ----------------------------------------------------- prepared statements ---

    pub async fn prepare(&self, session: &Session, sql: &str) -> Result<(String, Arc<Prepared>)> {
        let planned = self.plan(session, sql).await?;
        let parameter_schema = parameter_schema(&planned.plan)?;
        let dataset_schema = if planned.kind == StatementKind::Ddl {
            Arc::new(Schema::empty())
        } else {
            Self::result_schema(&planned.plan)
        };
        let handle = uuid::Uuid::new_v4().to_string();
        let prepared = Arc::new(Prepared {
            session_id: session.id.clone(),
            sql: sql.to_string(),
            kind: planned.kind,
            dataset_schema,
            parameter_schema,
            params: Mutex::new(None),
        });
        self.prepared
            .lock()
            .expect("prepared lock")
            .insert(handle.clone(), prepared.clone());
        Ok((handle, prepared))
    }

    /// The schema a prepared query streams with its bound parameters: types the plan left
    /// open (`SELECT $1`) are only known once values are bound.
    pub async fn bound_schema(&self, session: &Session, prepared: &Prepared) -> Result<SchemaRef> {
        let params = prepared.params.lock().expect("params lock").clone();
        let Some(params) = params else {
            return Ok(prepared.dataset_schema.clone());
        };
        let planned = self.plan(session, &prepared.sql).await?;
        let Some(first) = parameter_sets(&planned.plan, Some(&params))?
            .into_iter()
            .next()
        else {
            return Ok(prepared.dataset_schema.clone());
        };
        let plan = planned
            .plan
            .with_param_values(ParamValues::from(first))
            .map_err(|e| ServeError::datafusion("binding parameters", e))?;
        Ok(Self::result_schema(&plan))
    }

    pub fn prepared(&self, session: &Session, handle: &[u8]) -> Result<Arc<Prepared>> {
        let handle = std::str::from_utf8(handle).map_err(|_| {
            ServeError::InvalidArgument("malformed prepared statement handle".into())
        })?;
        let prepared = self
            .prepared
            .lock()
            .expect("prepared lock")
            .get(handle)
            .cloned()
            .ok_or_else(|| {
                ServeError::NotFound(format!(
                    "prepared statement {handle} does not exist (closed, or the server restarted); prepare it again"
                ))
            })?;
        if prepared.session_id != session.id {
            return Err(ServeError::NotFound(format!(
                "prepared statement {handle} belongs to another session"
            )));
        }
        Ok(prepared)
    }

    pub fn close_prepared(&self, session: &Session, handle: &[u8]) -> Result<()> {
        self.prepared(session, handle)?;
        let handle = String::from_utf8_lossy(handle).to_string();
        self.prepared.lock().expect("prepared lock").remove(&handle);
        Ok(())
    }

    // -------------------------------------------------------------- metadata ---

    /// The role's catalog list (for GetDbSchemas / GetTables).
    pub fn catalog_view(&self, session: &Session) -> Result<Arc<dyn CatalogProviderList>> {
        let ctx = self.context(session)?;
        Ok(ctx.state().catalog_list().clone())
    }

    /// Schemas the role sees, `information_schema` included.
    pub fn schemas(&self, session: &Session) -> Result<Vec<String>> {
        let list = self.catalog_view(session)?;
        let catalog = list
            .catalog(CATALOG)
            .ok_or_else(|| ServeError::Internal("catalog missing".into()))?;
        let mut names = catalog.schema_names();
        names.push("information_schema".to_string());
        names.sort();
        Ok(names)
    }

    /// Every table the role sees: (schema, table, type, schema of its rows).
    pub async fn tables(&self, session: &Session) -> Result<Vec<TableEntry>> {
        let list = self.catalog_view(session)?;
        let catalog = list
            .catalog(CATALOG)
            .ok_or_else(|| ServeError::Internal("catalog missing".into()))?;
        let mut out = Vec::new();
        let mut schemas: Vec<(String, Arc<dyn SchemaProvider>)> = catalog
            .schema_names()
            .into_iter()
            .filter_map(|name| catalog.schema(&name).map(|s| (name, s)))
            .collect();
        schemas.push((
            "information_schema".to_string(),
            Arc::new(InformationSchemaProvider::new(list.clone())),
        ));
        for (schema_name, schema) in schemas {
            let system = schema_name == "information_schema";
            let mut names = schema.table_names();
            names.sort();
            for table_name in names {
                let Some(table) = schema
                    .table(&table_name)
                    .await
                    .map_err(|e| ServeError::datafusion("list tables", e))?
                else {
                    continue;
                };
                out.push(TableEntry {
                    table_type: table_type_name(table.as_ref(), system),
                    schema: flight_schema(&table.schema()),
                    masked: table
                        .as_ref()
                        .downcast_ref::<GuardedTable>()
                        .map(GuardedTable::masked_columns)
                        .unwrap_or_default(),
                    schema_name: schema_name.clone(),
                    table_name,
                });
            }
        }
        Ok(out)
    }
}

/// What `cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// The query is over.
    NotCancellable,
    /// No query of the caller's user has this id (it may be another user's).
    NotFound,
}

/// A query as cancel knows it. Query ids travel in tickets, which clients can copy or forge, so
/// every lookup is by user and id: a user only ever reaches their own queries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct QueryKey {
    user: String,
    id: String,
}

impl QueryKey {
    fn new(session: &Session, id: &str) -> Self {
        Self {
            user: session.user.clone(),
            id: id.to_string(),
        }
    }
}

struct Running {
    token: CancellationToken,
    /// Streams of this query (a ticket may be redeemed more than once).
    executions: usize,
}

/// Keys remembered for a while; expired ones are pruned as the map grows, so that inserting
/// stays cheap however many queries a busy server sees.
struct Recent {
    ttl: Duration,
    seen: HashMap<QueryKey, Instant>,
    prune_at: usize,
}

impl Recent {
    const MIN_PRUNE: usize = 1024;

    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: HashMap::new(),
            prune_at: Self::MIN_PRUNE,
        }
    }

    fn insert(&mut self, key: QueryKey) {
        if self.seen.len() >= self.prune_at {
            let ttl = self.ttl;
            self.seen.retain(|_, at| at.elapsed() < ttl);
            self.prune_at = (self.seen.len() * 2).max(Self::MIN_PRUNE);
        }
        self.seen.insert(key, Instant::now());
    }

    fn contains(&self, key: &QueryKey) -> bool {
        self.seen.get(key).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Whether `key` was there (and not expired).
    fn remove(&mut self, key: &QueryKey) -> bool {
        self.seen
            .remove(key)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }
}

struct Queries {
    running: HashMap<QueryKey, Running>,
    /// Over (done, failed, cancelled, client gone): a cancel is answered `NotCancellable`.
    finished: Recent,
    /// Tickets issued and not redeemed yet: their user may cancel them before they start.
    issued: Recent,
    /// Cancelled before they started: DoGet refuses them.
    cancelled_early: Recent,
}

impl Queries {
    fn new() -> Self {
        Self {
            running: HashMap::new(),
            finished: Recent::new(Duration::from_secs(600)),
            issued: Recent::new(Duration::from_secs(3600)),
            cancelled_early: Recent::new(Duration::from_secs(3600)),
        }
    }
}

/// A query in `Queries::running`; dropping it (the stream ended, failed or was dropped because
/// the client went away) moves the query to `finished`.
struct Registration {
    engine: Arc<Engine>,
    key: QueryKey,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.engine.forget(&self.key);
    }
}

/// The audit record of a query that has no stream yet: recorded as `disconnected` if the
/// client goes away before there is one.
struct Starting {
    engine: Arc<Engine>,
    audit: Option<AuditDraft>,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut draft) = self.audit.take() {
            draft.record.status = "disconnected".into();
            self.engine.audit.record(draft.finish(0, 0));
        }
    }
}

pub struct TableEntry {
    pub schema_name: String,
    pub table_name: String,
    pub table_type: &'static str,
    pub schema: SchemaRef,
    pub masked: Vec<String>,
}

pub const TABLE_TYPES: &[&str] = &["LOCAL TEMPORARY", "SYSTEM TABLE", "TABLE", "VIEW"];

fn table_type_name(table: &dyn TableProvider, system: bool) -> &'static str {
    if system {
        return "SYSTEM TABLE";
    }
    match table.table_type() {
        TableType::Base => "TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// A hash of a random password, verified when the user does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::auth::hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default()
    })
}

/// Only reads, plus the session's temporary views, are allowed.
fn classify(statement: &DfStatement) -> Result<StatementKind> {
    let refuse = |what: String| {
        Err(ServeError::InvalidArgument(format!(
            "{what} is not allowed over Flight SQL: the server runs queries (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE) and the session's temporary views (CREATE VIEW / DROP VIEW); tables are written by `cdphub run` and bulk ingest"
        )))
    };
    match statement {
        DfStatement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_)
            | SqlStatement::ShowTables { .. }
            | SqlStatement::ShowColumns { .. } => Ok(StatementKind::Query),
            // `DESCRIBE t`: the columns and types of a table the role may read (resolved through
            // the secured catalog, so with the masked columns as the role sees them).
            SqlStatement::ExplainTable {
                describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
                ..
            } => Ok(StatementKind::Query),
            SqlStatement::Explain { statement, .. } => match statement.as_ref() {
                SqlStatement::Query(_) => Ok(StatementKind::Query),
                other => refuse(format!("EXPLAIN of `{}`", first_words(&other.to_string()))),
            },
            SqlStatement::CreateView(view) if !view.materialized => Ok(StatementKind::Ddl),
            SqlStatement::Drop {
                object_type: ObjectType::View,
                ..
            } => Ok(StatementKind::Ddl),
            other => refuse(format!("`{}`", first_words(&other.to_string()))),
        },
        DfStatement::Explain(explain) => match classify(&explain.statement)? {
            StatementKind::Query => Ok(StatementKind::Query),
            StatementKind::Ddl => refuse("EXPLAIN of DDL".into()),
        },
        DfStatement::CreateExternalTable(_) => refuse("CREATE EXTERNAL TABLE".into()),
        DfStatement::CopyTo(_) => refuse("COPY".into()),
        other => refuse(format!("`{}`", first_words(&other.to_string()))),
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// JDBC and ODBC send `?` placeholders; DataFusion binds `$1, $2, ...`.
fn number_placeholders(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(inner) => {
            let mut next = 0usize;
            let _ = visit_expressions_mut(inner.as_mut(), |expr| {
                if let SqlExpr::Value(value) = expr
                    && let Value::Placeholder(name) = &mut value.value
                    && name == "?"
                {
                    next += 1;
                    *name = format!("${next}");
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
        DfStatement::Explain(explain) => number_placeholders(&mut explain.statement),
        _ => {}
    }
}

/// Defence in depth: a plan may only scan lake tables through their guard. A provider of the
/// shared catalog reached any other way (a view built outside a secured session) is refused.
fn check_scans(plan: &LogicalPlan, catalog: &Catalog) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let shared = catalog.ctx.state();
    let mut raw: Vec<*const ()> = Vec::new();
    if let Some(cat) = shared.catalog_list().catalog(CATALOG) {
        for schema_name in cat.schema_names() {
            if let Some(schema) = cat.schema(&schema_name) {
                for table in schema.table_names() {
                    if let Some(provider) = futures::FutureExt::now_or_never(schema.table(&table))
                        .and_then(|r| r.ok())
                        .flatten()
                    {
                        raw.push(Arc::as_ptr(&provider) as *const ());
                    }
                }
            }
        }
    }
    let mut violation = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
        {
            let ptr = Arc::as_ptr(&provider) as *const ();
            if raw.contains(&ptr) {
                violation = Some(scan.table_name.to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| ServeError::datafusion("check plan", e))?;
    match violation {
        Some(table) => Err(ServeError::Internal(format!(
            "the plan reads {table} without its access guard; refusing to run it"
        ))),
        None => Ok(()),
    }
}

/// `$1, $2, ...` in order, with the types DataFusion inferred (NULL when unknown).
fn parameter_schema(plan: &LogicalPlan) -> Result<SchemaRef> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| ServeError::datafusion("parameters", e))?;
    let mut params: Vec<(usize, String, Option<DataType>)> = types
        .into_iter()
        .map(|(name, data_type)| {
            let index = name
                .trim_start_matches('$')
                .parse::<usize>()
                .unwrap_or(usize::MAX);
            (index, name, data_type)
        })
        .collect();
    params.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Arc::new(Schema::new(
        params
            .into_iter()
            .map(|(_, name, data_type)| Field::new(name, data_type.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    )))
}

/// One list of values per bound row, cast to the types the plan expects.
fn parameter_sets(
    plan: &LogicalPlan,
    params: Option<&RecordBatch>,
) -> Result<Vec<Vec<ScalarValue>>> {
    let expected = parameter_schema(plan)?;
    let Some(batch) = params else {
        if expected.fields().is_empty() {
            return Ok(Vec::new());
        }
        return Err(ServeError::InvalidArgument(format!(
            "the statement has {} parameter(s) but none were bound",
            expected.fields().len()
        )));
    };
    if batch.num_columns() != expected.fields().len() {
        return Err(ServeError::InvalidArgument(format!(
            "the statement has {} parameter(s) but {} value(s) were bound",
            expected.fields().len(),
            batch.num_columns()
        )));
    }
    let mut sets = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut values = Vec::with_capacity(batch.num_columns());
        for (column, field) in batch.columns().iter().zip(expected.fields()) {
            let value = ScalarValue::try_from_array(column, row)
                .map_err(|e| ServeError::datafusion("reading a parameter", e))?;
            let value = match field.data_type() {
                DataType::Null => value,
                wanted if value.data_type() != *wanted => value.cast_to(wanted).map_err(|e| {
                    ServeError::InvalidArgument(format!(
                        "parameter {} must be {wanted}: {}",
                        field.name(),
                        crate::error::clean_message(&e)
                    ))
                })?,
                _ => value,
            };
            values.push(value);
        }
        sets.push(values);
    }
    Ok(sets)
}

/// The schema clients receive: view and dictionary types become their plain forms.
/// Every column is announced nullable: the logical plan (FlightInfo, prepared statements) and
/// the physical plan (the stream) do not always agree on nullability, and clients such as
/// ADBC reject a stream whose schema differs from the one announced.
pub fn flight_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_data_type(flight_type(f.data_type()))
                .with_nullable(true)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn flight_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, value) => flight_type(value),
        other => other.clone(),
    }
}

pub fn to_flight_batch(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, DataFusionError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{bytes}B")
    }
}

/// The audit record of a query in flight.
struct AuditDraft {
    record: AuditRecord,
    started: Instant,
}

impl AuditDraft {
    fn new(session: &Session, request: &QueryRequest) -> Self {
        let now = Utc::now();
        Self {
            record: AuditRecord {
                query_id: request.query_id.clone(),
                session_id: Some(session.id.clone()),
                user: session.user.clone(),
                role: Some(session.role.name.clone()),
                kind: request.kind,
                sql: request.sql.clone(),
                started_at: now,
                finished_at: now,
                rows: 0,
                bytes: 0,
                status: "ok".into(),
                error: None,
                client: request.client.clone(),
            },
            started: Instant::now(),
        }
    }

    fn fail(&mut self, error: &ServeError) {
        self.record.status = error.status_label().to_string();
        self.record.error = Some(error.to_string());
    }

    fn finish(mut self, rows: i64, bytes: i64) -> AuditRecord {
        self.record.rows = rows;
        self.record.bytes = bytes;
        self.record.finished_at = self.record.started_at
            + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.record
    }
}

/// The DoGet stream of one query: limits, cancel, audit.
///
/// The timeout and cancel are enforced by a watchdog task, not when the client reads: a client
/// that stops reading (stalled, or gone without closing its connection) leaves the stream
/// unpolled behind HTTP/2 flow control, and must not hold its concurrency slot, memory and
/// DataFusion stream past `server.query-timeout`. The watchdog stops the query at once and the
/// client gets the error on its next read.
struct Monitored {
    run: Arc<Mutex<QueryRun>>,
    watchdog: tokio::task::JoinHandle<()>,
}

/// What a query holds while it streams; all released together when it is over.
struct QueryRun {
    /// `None` once the query is over.
    inner: Option<BoxStream<'static, Result<FlightData, FlightError>>>,
    memory_limit: u64,
    engine: Arc<Engine>,
    registration: Option<Registration>,
    audit: Option<AuditDraft>,
    rows: Arc<AtomicI64>,
    bytes: i64,
    permit: Option<OwnedSemaphorePermit>,
    /// Why the watchdog stopped the query: what the client's next read returns.
    stopped: Option<ServeError>,
    /// The task reading the stream, woken when the watchdog stops it.
    waker: Option<std::task::Waker>,
}

impl QueryRun {
    fn over(&self) -> bool {
        self.inner.is_none()
    }

    /// Releases everything the query holds and writes its audit record.
    fn finish(&mut self, error: Option<&ServeError>, status: Option<&str>) {
        self.inner = None;
        self.permit = None;
        self.registration = None;
        if let Some(mut draft) = self.audit.take() {
            if let Some(error) = error {
                draft.fail(error);
            }
            if let Some(status) = status {
                draft.record.status = status.to_string();
            }
            let rows = self.rows.load(Ordering::Relaxed);
            self.engine.audit.record(draft.finish(rows, self.bytes));
        }
    }

    /// The watchdog's stop: timeout or cancel, whether or not the client is reading.
    fn stop(&mut self, error: ServeError) {
        if self.over() {
            return;
        }
        self.finish(Some(&error), None);
        self.stopped = Some(error);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn classify(&self, error: FlightError) -> ServeError {
        match error {
            FlightError::ExternalError(inner) => match inner.downcast::<DataFusionError>() {
                Ok(df) => {
                    if matches!(df.find_root(), DataFusionError::ResourcesExhausted(_)) {
                        ServeError::MemoryExhausted {
                            limit: human_size(self.memory_limit),
                            detail: crate::error::clean_message(df.find_root()),
                        }
                    } else {
                        ServeError::datafusion("query failed", *df)
                    }
                }
                Err(other) => ServeError::Internal(other.to_string()),
            },
            FlightError::Arrow(e) => ServeError::datafusion(
                "query failed",
                DataFusionError::ArrowError(Box::new(e), None),
            ),
            other => ServeError::Internal(other.to_string()),
        }
    }
}

impl Monitored {
    fn start(run: QueryRun, timeout: Duration, cancel: CancellationToken) -> Self {
        let run = Arc::new(Mutex::new(run));
        let watched = Arc::downgrade(&run);
        let watchdog = tokio::spawn(async move {
            let error = tokio::select! {
                _ = tokio::time::sleep(timeout) => ServeError::Timeout(timeout),
                _ = cancel.cancelled() => ServeError::Cancelled,
            };
            if let Some(run) = watched.upgrade() {
                run.lock().expect("query run lock").stop(error);
            }
        });
        Self { run, watchdog }
    }
}

impl Stream for Monitored {
    type Item = Result<FlightData, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut run = self.run.lock().expect("query run lock");
        if let Some(error) = run.stopped.take() {
            return Poll::Ready(Some(Err(error.into())));
        }
        let Some(inner) = run.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(data))) => {
                run.bytes += (data.data_body.len() + data.data_header.len()) as i64;
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(error))) => {
                let error = run.classify(error);
                run.finish(Some(&error), None);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                run.finish(None, None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !run
                    .waker
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    run.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Monitored {
    fn drop(&mut self) {
        self.watchdog.abort();
        let mut run = self.run.lock().expect("query run lock");
        if !run.over() {
            // The client went away (or cancelled the call) before the end of the results.
            run.finish(None, Some("disconnected"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn parse(sql: &str) -> DfStatement {
        DFParser::parse_sql(sql).unwrap().pop_front().unwrap()
    }

    #[test]
    fn only_reads_and_views_are_allowed() {
        assert_eq!(classify(&parse("SELECT 1")).unwrap(), StatementKind::Query);
        assert_eq!(
            classify(&parse("WITH a AS (SELECT 1) SELECT * FROM a")).unwrap(),
            StatementKind::Query
        );
        assert_eq!(
            classify(&parse("EXPLAIN SELECT 1")).unwrap(),
            StatementKind::Query
        );
        assert_eq!(
            classify(&parse("CREATE VIEW v AS SELECT 1")).unwrap(),
            StatementKind::Ddl
        );
        for describe in ["DESCRIBE marts.x", "DESC marts.x", "DESCRIBE SELECT 1"] {
            assert_eq!(
                classify(&parse(describe)).unwrap(),
                StatementKind::Query,
                "{describe}"
            );
        }
        for refused in [
            "CREATE TABLE t AS SELECT 1",
            "INSERT INTO raw.x VALUES (1)",
            "DROP TABLE marts.x",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
            "COPY (SELECT 1) TO '/tmp/x.parquet'",
            "SET datafusion.execution.batch_size = 1",
            "DELETE FROM raw.x",
        ] {
            let err = classify(&parse(refused)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{refused}: {err}");
        }
    }

    #[test]
    fn question_marks_become_numbered_placeholders() {
        let mut statement = parse("SELECT * FROM t WHERE a = ? AND b IN (?, ?)");
        number_placeholders(&mut statement);
        let text = statement.to_string();
        assert!(
            text.contains("a = $1") && text.contains("($2, $3)"),
            "{text}"
        );
    }

    #[test]
    fn view_types_become_plain_for_clients() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new(
                "b",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("c", DataType::Int64, false),
        ]);
        let out = flight_schema(&schema);
        assert_eq!(out.field(0).data_type(), &DataType::Utf8);
        assert_eq!(out.field(1).data_type(), &DataType::Utf8);
        assert_eq!(out.field(2).data_type(), &DataType::Int64);
    }
}
