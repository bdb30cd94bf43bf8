//! The Flight SQL protocol surface: [`CdpFlightSql`] implements the Flight SQL commands, and
//! [`Authenticated`] puts a bearer-token check in front of every RPC but the handshake.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionEndSavepointRequest, ActionEndTransactionRequest,
    Any, CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, BasicAuth, CancelFlightInfoRequest, CancelFlightInfoResult, Criteria,
    Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::audit::AuditRecord;
use crate::auth::{Session, parse_basic};
use crate::engine::{
    CancelOutcome, Engine, FlightDataStream, QueryRequest, StatementKind, TABLE_TYPES,
};
use crate::error::ServeError;
use crate::sql_info::xdbc_type_info;

/// The authenticated caller, put in the request extensions by [`Authenticated`].
#[derive(Clone)]
pub struct Caller(pub Arc<Session>);

fn caller<T>(request: &Request<T>) -> Result<Arc<Session>, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.clone())
        .ok_or_else(|| Status::unauthenticated("no session: authenticate with the Handshake first"))
}

fn client<T>(request: &Request<T>) -> Option<String> {
    request.remote_addr().map(|a| a.to_string())
}

/// What a statement ticket carries: stateless, re-planned (and re-checked) by DoGet.
#[derive(Debug, Serialize, Deserialize)]
struct TicketPayload {
    /// Query id, for cancel and the audit log.
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prepared: Option<String>,
}

impl TicketPayload {
    fn encode(&self) -> Ticket {
        let handle = serde_json::to_vec(self).expect("ticket payload serializes");
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        Ticket::new(ticket.as_any().encode_to_vec())
    }

    fn decode(handle: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(handle)
            .map_err(|_| Status::invalid_argument("malformed statement ticket"))
    }

    fn from_ticket_bytes(bytes: &[u8]) -> Option<Self> {
        let any = Any::decode(bytes).ok()?;
        let ticket: TicketStatementQuery = any.unpack().ok()??;
        serde_json::from_slice(&ticket.statement_handle).ok()
    }
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

fn flight_info(
    schema: &Schema,
    ticket: Ticket,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encode schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor))
}

fn one_batch<E: Into<FlightError>>(
    schema: SchemaRef,
    batch: Result<RecordBatch, E>,
) -> FlightDataStream {
    let batch = batch.map_err(Into::into);
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { batch }))
            .map_err(Status::from),
    )
}

fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

fn empty(schema: SchemaRef) -> FlightDataStream {
    let batch = RecordBatch::new_empty(schema.clone());
    one_batch::<FlightError>(schema, Ok(batch))
}

/// The Flight SQL commands.
#[derive(Clone)]
pub struct CdpFlightSql {
    pub engine: Arc<Engine>,
}

impl CdpFlightSql {
    fn audit_failure(
        &self,
        session: &Session,
        kind: &'static str,
        sql: &str,
        client: Option<String>,
        error: &ServeError,
    ) {
        let now = chrono::Utc::now();
        self.engine.audit.record(AuditRecord {
            query_id: uuid::Uuid::new_v4().to_string(),
            session_id: Some(session.id.clone()),
            user: session.user.clone(),
            role: Some(session.role.name.clone()),
            kind,
            sql: sql.to_string(),
            started_at: now,
            finished_at: now,
            rows: 0,
            bytes: 0,
            status: error.status_label().to_string(),
            error: Some(error.to_string()),
            client,
        });
    }

    fn audit_ddl(&self, session: &Session, sql: &str, client: Option<String>) {
        let now = chrono::Utc::now();
        self.engine.audit.record(AuditRecord {
            query_id: uuid::Uuid::new_v4().to_string(),
            session_id: Some(session.id.clone()),
            user: session.user.clone(),
            role: Some(session.role.name.clone()),
            kind: "update",
            sql: sql.to_string(),
            started_at: now,
            finished_at: now,
            rows: 0,
            bytes: 0,
            status: "ok".into(),
            error: None,
            client,
        });
    }

    /// Plans `sql` (running it at once if it is a temporary view), for GetFlightInfo.
    async fn describe(
        &self,
        session: &Arc<Session>,
        sql: &str,
        client: Option<String>,
    ) -> Result<SchemaRef, Status> {
        let planned = match self.engine.plan(session, sql).await {
            Ok(planned) => planned,
            Err(error) => {
                self.audit_failure(session, "statement", sql, client, &error);
                return Err(error.into());
            }
        };
        if planned.kind == StatementKind::Ddl {
            self.engine.run_ddl(planned).await.inspect_err(|error| {
                self.audit_failure(session, "update", sql, client.clone(), error)
            })?;
            self.audit_ddl(session, sql, client);
            return Ok(Arc::new(Schema::empty()));
        }
        Ok(Engine::result_schema(&planned.plan))
    }

    async fn update(
        &self,
        session: &Arc<Session>,
        sql: &str,
        client: Option<String>,
    ) -> Result<i64, Status> {
        let planned = match self.engine.plan(session, sql).await {
            Ok(planned) => planned,
            Err(error) => {
                self.audit_failure(session, "update", sql, client, &error);
                return Err(error.into());
            }
        };
        if planned.kind != StatementKind::Ddl {
            let error = ServeError::InvalidArgument(
                "this statement returns rows: run it as a query (execute / executeQuery), not as an update".into(),
            );
            self.audit_failure(session, "update", sql, client, &error);
            return Err(error.into());
        }
        self.engine.run_ddl(planned).await.inspect_err(|error| {
            self.audit_failure(session, "update", sql, client.clone(), error)
        })?;
        self.audit_ddl(session, sql, client);
        Ok(0)
    }
}

#[tonic::async_trait]
impl FlightSqlService for CdpFlightSql {
    type FlightService = CdpFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let client = client(&request);
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let credentials = match header {
            Some(header) => parse_basic(&header),
            None => {
                // Older clients put a BasicAuth message in the handshake payload instead.
                let mut stream = request.into_inner();
                match stream.next().await {
                    Some(Ok(first)) => BasicAuth::decode(first.payload)
                        .map(|auth| (auth.username, auth.password))
                        .map_err(|_| {
                            ServeError::Unauthenticated("malformed handshake payload".into())
                        }),
                    _ => Err(ServeError::Unauthenticated(
                        "the handshake needs `authorization: Basic <base64 user:password>`".into(),
                    )),
                }
            }
        };
        let outcome = credentials.and_then(|(user, password)| {
            self.engine
                .login(&user, &password)
                .map_err(|e| (user, e))
                .map_err(|(user, e)| {
                    let now = chrono::Utc::now();
                    self.engine.audit.record(AuditRecord {
                        query_id: uuid::Uuid::new_v4().to_string(),
                        session_id: None,
                        user,
                        role: None,
                        kind: "login",
                        sql: String::new(),
                        started_at: now,
                        finished_at: now,
                        rows: 0,
                        bytes: 0,
                        status: e.status_label().to_string(),
                        error: Some(e.to_string()),
                        client: client.clone(),
                    });
                    e
                })
        });
        let (token, _session) = outcome.map_err(Status::from)?;
        let bearer = format!("Bearer {token}");
        let output = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        response.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(bearer.as_str())
                .map_err(|_| Status::internal("token header"))?,
        );
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = caller(&request)?;
        if query.transaction_id.is_some() {
            return Err(ServeError::Unsupported("transactions".into()).into());
        }
        let schema = self
            .describe(&session, &query.query, client(&request))
            .await?;
        let ticket = TicketPayload {
            id: self.engine.issue_query_id(&session),
            sql: Some(query.query),
            prepared: None,
        }
        .encode();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = caller(&request)?;
        let prepared = self
            .engine
            .prepared(&session, &query.prepared_statement_handle)?;
        let schema = if prepared.kind == StatementKind::Ddl {
            self.describe(&session, &prepared.sql, client(&request))
                .await?
        } else {
            self.engine.bound_schema(&session, &prepared).await?
        };
        let ticket = TicketPayload {
            id: self.engine.issue_query_id(&session),
            sql: None,
            prepared: Some(String::from_utf8_lossy(&query.prepared_statement_handle).to_string()),
        }
        .encode();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = caller(&request)?;
        let payload = TicketPayload::decode(&ticket.statement_handle)?;
        let (sql, kind, params) = match (payload.sql, payload.prepared) {
            (Some(sql), _) => (sql, "statement", None),
            (None, Some(handle)) => {
                let prepared = self.engine.prepared(&session, handle.as_bytes())?;
                let params = prepared.params.lock().expect("params lock").clone();
                (prepared.sql.clone(), "prepared", params)
            }
            (None, None) => return Err(Status::invalid_argument("empty statement ticket")),
        };
        let stream = self
            .engine
            .execute(
                session,
                QueryRequest {
                    query_id: payload.id,
                    sql,
                    kind,
                    params,
                    client: client(&request),
                },
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // Some clients use the command itself as the ticket.
        let session = caller(&request)?;
        let prepared = self
            .engine
            .prepared(&session, &query.prepared_statement_handle)?;
        let params = prepared.params.lock().expect("params lock").clone();
        let stream = self
            .engine
            .execute(
                session,
                QueryRequest {
                    query_id: uuid::Uuid::new_v4().to_string(),
                    sql: prepared.sql.clone(),
                    kind: "prepared",
                    params,
                    client: client(&request),
                },
            )
            .await?;
        Ok(Response::new(stream))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(cdphub_lake::CATALOG);
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = caller(&request)?;
        let mut builder = query.into_builder();
        for schema in self.engine.schemas(&session)? {
            builder.append(cdphub_lake::CATALOG, schema);
        }
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = caller(&request)?;
        let mut builder = query.into_builder();
        for entry in self.engine.tables(&session).await? {
            builder
                .append(
                    cdphub_lake::CATALOG,
                    &entry.schema_name,
                    &entry.table_name,
                    entry.table_type,
                    &entry.schema,
                )
                .map_err(Status::from)?;
        }
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for table_type in TABLE_TYPES {
            builder.append(table_type);
        }
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder(&self.engine.sql_info).schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.engine.sql_info);
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Ok(Response::new(flight_info(
            &primary_keys_schema(),
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // Lake tables declare no keys.
        Ok(Response::new(empty(primary_keys_schema())))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Ok(Response::new(flight_info(
            &foreign_keys_schema(),
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty(foreign_keys_schema())))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Ok(Response::new(flight_info(
            &foreign_keys_schema(),
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty(foreign_keys_schema())))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        Ok(Response::new(flight_info(
            &foreign_keys_schema(),
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty(foreign_keys_schema())))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(query.as_any().encode_to_vec());
        let schema = query.into_builder(xdbc_type_info()).schema();
        Ok(Response::new(flight_info(
            &schema,
            ticket,
            request.into_inner(),
        )?))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(xdbc_type_info());
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = caller(&request)?;
        if command.transaction_id.is_some() {
            return Err(ServeError::Unsupported("transactions".into()).into());
        }
        self.update(&session, &command.query, client(&request))
            .await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = caller(&request)?;
        let client = client(&request);
        let stream = request.into_inner();
        crate::ingest::ingest(&self.engine, &session, command, stream, client)
            .await
            .map_err(Status::from)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let session = caller(&request)?;
        let prepared = self
            .engine
            .prepared(&session, &query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(FlightError::from),
        )
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("reading bound parameters: {e}")))?;
        let params = match batches.first() {
            None => None,
            Some(first) => Some(
                concat_batches(&first.schema(), &batches)
                    .map_err(|e| Status::invalid_argument(format!("bound parameters: {e}")))?,
            ),
        };
        *prepared.params.lock().expect("params lock") = params;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = caller(&request)?;
        let prepared = self
            .engine
            .prepared(&session, &query.prepared_statement_handle)?;
        self.update(&session, &prepared.sql, client(&request)).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = caller(&request)?;
        if query.transaction_id.is_some() {
            return Err(ServeError::Unsupported("transactions".into()).into());
        }
        let (handle, prepared) = match self.engine.prepare(&session, &query.query).await {
            Ok(ok) => ok,
            Err(error) => {
                self.audit_failure(&session, "prepared", &query.query, client(&request), &error);
                return Err(error.into());
            }
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: ipc_schema(&prepared.dataset_schema)?,
            parameter_schema: ipc_schema(&prepared.parameter_schema)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let session = caller(&request)?;
        self.engine
            .close_prepared(&session, &query.prepared_statement_handle)
            .map_err(Status::from)
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        Err(ServeError::Unsupported(
            "transactions (the lake is read through snapshots; every publish is one atomic commit)"
                .into(),
        )
        .into())
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(ServeError::Unsupported("transactions".into()).into())
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        _request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        Err(ServeError::Unsupported("savepoints".into()).into())
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        Err(ServeError::Unsupported("savepoints".into()).into())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let session = caller(&request)?;
        let info = FlightInfo::decode(query.info).map_err(|_| {
            Status::invalid_argument("CancelQuery needs the FlightInfo of the query")
        })?;
        let outcome = cancel_info(&self.engine, &session, &info)?;
        Ok(ActionCancelQueryResult {
            result: match outcome {
                CancelOutcome::Cancelled => 1,
                _ => 3,
            },
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        if request.get_ref().r#type == "CancelFlightInfo" {
            let session = caller(&request)?;
            let cancel = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
                .map_err(|_| Status::invalid_argument("malformed CancelFlightInfoRequest"))?;
            let info = cancel
                .info
                .ok_or_else(|| Status::invalid_argument("CancelFlightInfo needs the FlightInfo"))?;
            let outcome = cancel_info(&self.engine, &session, &info)?;
            let result = CancelFlightInfoResult {
                status: match outcome {
                    CancelOutcome::Cancelled => 1,
                    _ => 3,
                },
            };
            let body = arrow_flight::Result {
                body: result.encode_to_vec().into(),
            };
            return Ok(Response::new(Box::pin(futures::stream::iter(vec![Ok(
                body,
            )]))));
        }
        Err(Status::invalid_argument(format!(
            "unknown action `{}`; ListActions lists the supported ones",
            request.get_ref().r#type
        )))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: "CancelFlightInfo".into(),
            description: "Cancels a running query given its FlightInfo".into(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Cancels the queries of `info`'s endpoints that belong to `session`'s user. `NOT_FOUND` when
/// none does: an id this server never issued and another user's query get the same answer, so
/// that a cancel neither stops nor reveals other users' queries.
fn cancel_info(
    engine: &Engine,
    session: &Session,
    info: &FlightInfo,
) -> Result<CancelOutcome, Status> {
    let mut outcome = CancelOutcome::NotFound;
    for endpoint in &info.endpoint {
        let Some(ticket) = &endpoint.ticket else {
            continue;
        };
        if let Some(payload) = TicketPayload::from_ticket_bytes(&ticket.ticket) {
            outcome = match (outcome, engine.cancel(session, &payload.id)) {
                (CancelOutcome::Cancelled, _) | (_, CancelOutcome::Cancelled) => {
                    CancelOutcome::Cancelled
                }
                (CancelOutcome::NotCancellable, _) | (_, CancelOutcome::NotCancellable) => {
                    CancelOutcome::NotCancellable
                }
                _ => CancelOutcome::NotFound,
            };
        }
    }
    match outcome {
        CancelOutcome::NotFound => Err(Status::not_found(
            "the FlightInfo names no query of yours on this server; a query can only be cancelled by the user who runs it",
        )),
        found => Ok(found),
    }
}

/// Checks the bearer token on every RPC except the handshake, then hands over to Flight SQL.
#[derive(Clone)]
pub struct Authenticated {
    inner: CdpFlightSql,
}

impl Authenticated {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            inner: CdpFlightSql { engine },
        }
    }

    fn admit<T>(&self, request: &mut Request<T>) -> Result<Arc<Session>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let session = self
            .inner
            .engine
            .tokens
            .check(header)
            .map_err(Status::from)?;
        request.extensions_mut().insert(Caller(session.clone()));
        Ok(session)
    }
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FlightService for Authenticated {
    type HandshakeStream = Stream_<HandshakeResponse>;
    type ListFlightsStream = Stream_<FlightInfo>;
    type DoGetStream = Stream_<FlightData>;
    type DoPutStream = Stream_<PutResult>;
    type DoActionStream = Stream_<arrow_flight::Result>;
    type ListActionsStream = Stream_<ActionType>;
    type DoExchangeStream = Stream_<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.inner, request).await
    }

    async fn list_flights(
        &self,
        mut request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        self.admit(&mut request)?;
        FlightService::list_flights(&self.inner, request).await
    }

    async fn get_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.admit(&mut request)?;
        FlightService::get_flight_info(&self.inner, request).await
    }

    async fn poll_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        self.admit(&mut request)?;
        FlightService::poll_flight_info(&self.inner, request).await
    }

    async fn get_schema(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let session = self.admit(&mut request)?;
        // The schema of a statement without running it (ADBC's execute_schema).
        let any = Any::decode(&*request.get_ref().cmd)
            .map_err(|_| Status::invalid_argument("GetSchema needs a Flight SQL command"))?;
        let schema = if let Ok(Some(query)) = any.unpack::<CommandStatementQuery>() {
            let planned = self.inner.engine.plan(&session, &query.query).await?;
            Engine::result_schema(&planned.plan)
        } else if let Ok(Some(query)) = any.unpack::<CommandPreparedStatementQuery>() {
            self.inner
                .engine
                .prepared(&session, &query.prepared_statement_handle)?
                .dataset_schema
                .clone()
        } else {
            return Err(Status::unimplemented(
                "GetSchema answers statements and prepared statements",
            ));
        };
        Ok(Response::new(SchemaResult {
            schema: ipc_schema(&schema)?,
        }))
    }

    async fn do_get(
        &self,
        mut request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.admit(&mut request)?;
        FlightService::do_get(&self.inner, request).await
    }

    async fn do_put(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        self.admit(&mut request)?;
        FlightService::do_put(&self.inner, request).await
    }

    async fn do_action(
        &self,
        mut request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        self.admit(&mut request)?;
        FlightService::do_action(&self.inner, request).await
    }

    async fn list_actions(
        &self,
        mut request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        self.admit(&mut request)?;
        FlightService::list_actions(&self.inner, request).await
    }

    async fn do_exchange(
        &self,
        mut request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        self.admit(&mut request)?;
        FlightService::do_exchange(&self.inner, request).await
    }
}
