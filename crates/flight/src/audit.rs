//! `hub.audit_log`: one row per query, ingest and failed login, appended to a Delta table under
//! `_hub/audit_log`. Records are batched by a background writer (one commit per second at most,
//! so 32 busy clients do not turn into 32 commits a second); a clean shutdown flushes them all.

use std::sync::Arc;
use std::time::Duration;

use cdphub_lake::delta::{self, DeltaLocation};
use cdphub_lake::{HUB_SCHEMA, Lake};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::engine::CatalogHandle;

pub const AUDIT_TABLE: &str = "audit_log";
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_AT: usize = 2_000;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub query_id: String,
    pub session_id: Option<String>,
    pub user: String,
    pub role: Option<String>,
    /// `statement`, `prepared`, `ingest`, `update`, `login`.
    pub kind: &'static str,
    pub sql: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows: i64,
    pub bytes: i64,
    /// `ok`, `error`, `permission_denied`, `cancelled`, `disconnected`, `timeout`, ...
    pub status: String,
    pub error: Option<String>,
    pub client: Option<String>,
}

impl AuditRecord {
    pub fn duration_ms(&self) -> i64 {
        (self.finished_at - self.started_at).num_milliseconds()
    }
}

enum Message {
    Record(Box<AuditRecord>),
    Flush(oneshot::Sender<()>),
}

/// Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::UnboundedSender<Message>,
}

pub struct AuditWriter {
    handle: JoinHandle<()>,
    log: AuditLog,
}

impl AuditLog {
    /// Starts the writer task.
    pub fn start(lake: Lake, catalog: Arc<CatalogHandle>) -> AuditWriter {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handle = tokio::spawn(write_loop(lake, catalog, receiver));
        AuditWriter {
            handle,
            log: AuditLog { sender },
        }
    }

    pub fn record(&self, record: AuditRecord) {
        tracing::info!(
            target: "cdphub_flight::audit",
            user = %record.user,
            kind = record.kind,
            status = %record.status,
            rows = record.rows,
            ms = record.duration_ms(),
            "{}",
            record.sql
        );
        if self.sender.send(Message::Record(Box::new(record))).is_err() {
            tracing::error!("audit writer stopped; an audit record was not written");
        }
    }

    /// Writes every record sent so far; returns once they are committed (or failed to be).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl AuditWriter {
    pub fn log(&self) -> AuditLog {
        self.log.clone()
    }

    /// Flushes and stops the writer (clean shutdown).
    pub async fn shutdown(self) {
        self.log.flush().await;
        drop(self.log);
        // The writer ends when the last clone goes. The engine holds one until the process
        // exits, so waiting for that would always take the whole grace; a second is enough
        // for streams still being dropped (the in-flight calls have finished by now).
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.handle).await;
    }
}

async fn write_loop(
    lake: Lake,
    catalog: Arc<CatalogHandle>,
    mut receiver: mpsc::UnboundedReceiver<Message>,
) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = receiver.recv() => match message {
                Some(Message::Record(record)) => {
                    pending.push(*record);
                    if pending.len() >= FLUSH_AT {
                        write(&lake, &catalog, &mut pending).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    // Drain what is already queued so that "flush" covers every earlier send.
                    while let Ok(Message::Record(record)) = receiver.try_recv() {
                        pending.push(*record);
                    }
                    write(&lake, &catalog, &mut pending).await;
                    let _ = done.send(());
                }
                None => {
                    write(&lake, &catalog, &mut pending).await;
                    return;
                }
            },
            _ = tick.tick() => {
                if !pending.is_empty() {
                    write(&lake, &catalog, &mut pending).await;
                }
            }
        }
    }
}

async fn write(lake: &Lake, catalog: &CatalogHandle, pending: &mut Vec<AuditRecord>) {
    if pending.is_empty() {
        return;
    }
    let batch = match to_batch(pending) {
        Ok(batch) => batch,
        Err(e) => {
            tracing::error!("audit records could not be encoded and are dropped: {e}");
            pending.clear();
            return;
        }
    };
    let location = DeltaLocation::system(AUDIT_TABLE);
    match delta::append(lake, &location, vec![batch]).await {
        Ok(table) => {
            pending.clear();
            match delta::provider(&table, &location.sql_name).await {
                Ok(provider) => catalog
                    .current()
                    .set_table(HUB_SCHEMA, AUDIT_TABLE, provider),
                Err(e) => tracing::warn!("hub.audit_log written but not refreshed: {e}"),
            }
        }
        Err(e) => {
            // Keep the records and try again on the next tick.
            tracing::error!(
                "cannot append {} record(s) to hub.audit_log (will retry): {e}",
                pending.len()
            );
        }
    }
}

pub fn schema() -> Schema {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Schema::new(vec![
        Field::new("query_id", DataType::Utf8, false),
        Field::new("session_id", DataType::Utf8, true),
        Field::new("user", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("sql", DataType::Utf8, false),
        Field::new("started_at", ts.clone(), false),
        Field::new("finished_at", ts, false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("client", DataType::Utf8, true),
    ])
}

fn to_batch(records: &[AuditRecord]) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let text = |f: fn(&AuditRecord) -> Option<&str>| -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<StringArray>())
    };
    let times = |f: fn(&AuditRecord) -> DateTime<Utc>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(
                records
                    .iter()
                    .map(|r| f(r).timestamp_micros())
                    .collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        )
    };
    let ints = |f: fn(&AuditRecord) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(records.iter().map(f)))
    };
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![
            text(|r| Some(&r.query_id)),
            text(|r| r.session_id.as_deref()),
            text(|r| Some(&r.user)),
            text(|r| r.role.as_deref()),
            text(|r| Some(r.kind)),
            text(|r| Some(&r.sql)),
            times(|r| r.started_at),
            times(|r| r.finished_at),
            ints(AuditRecord::duration_ms),
            ints(|r| r.rows),
            ints(|r| r.bytes),
            text(|r| Some(&r.status)),
            text(|r| r.error.as_deref()),
            text(|r| r.client.as_deref()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_encode_with_every_column() {
        let now = Utc::now();
        let record = AuditRecord {
            query_id: "q1".into(),
            session_id: None,
            user: "ana".into(),
            role: Some("analyst".into()),
            kind: "statement",
            sql: "SELECT 1".into(),
            started_at: now,
            finished_at: now + chrono::Duration::milliseconds(12),
            rows: 1,
            bytes: 100,
            status: "ok".into(),
            error: None,
            client: Some("127.0.0.1:5000".into()),
        };
        let batch = to_batch(&[record]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.num_columns(), schema().fields().len());
        let duration = batch
            .column_by_name("duration_ms")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(duration.value(0), 12);
    }
}
