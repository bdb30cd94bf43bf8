//! Writes generated chunks to the lake: assigns the sequence-numbered ids, routes rows to
//! month partitions and keeps the per-source totals for the report.
//!
//! Each sink runs as its own task fed through a small bounded channel, so Parquet encoding
//! of the different sources proceeds in parallel with itself and with the generation of
//! the next chunks. Jobs reach a sink in chunk order, which keeps files deterministic.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ad_spend::{AdVisits, ad_spend_batch};
use crate::chunk::{ChunkOutput, RecordSource, SourceChunk, TruthChunk};
use crate::columns::{Columns, Text};
use crate::plan::Plan;
use crate::sink::{FileNaming, MAX_FILE_ROWS, ParquetSink, SinkStats, delete_prefix};
use crate::{DatagenError, SOURCES, SourceReport, schema};

/// Record id prefixes and zero-padded widths (wide enough for the largest scale).
fn id_format(source: RecordSource) -> (&'static str, usize) {
    match source {
        RecordSource::Crm => ("CRM", 8),
        RecordSource::Web => ("WE", 10),
        RecordSource::Orders => ("O", 9),
        RecordSource::Email => ("EE", 10),
        RecordSource::Consents => ("CS", 9),
    }
}

/// Ids already handed out per source; the next id of a source is `issued + 1`.
#[derive(Default, Clone, Copy)]
struct Issued {
    crm: u64,
    web: u64,
    orders: u64,
    email: u64,
    consents: u64,
}

impl Issued {
    fn get(&self, source: RecordSource) -> u64 {
        match source {
            RecordSource::Crm => self.crm,
            RecordSource::Web => self.web,
            RecordSource::Orders => self.orders,
            RecordSource::Email => self.email,
            RecordSource::Consents => self.consents,
        }
    }

    fn advance(&mut self, chunk: &ChunkOutput) {
        self.crm += chunk.crm.rows as u64;
        self.web += chunk.web.rows as u64;
        self.orders += chunk.orders.rows as u64;
        self.email += chunk.email.rows as u64;
        self.consents += chunk.consents.rows as u64;
    }
}

/// Work for a sink: builds the batches to append, each with its partition index.
type Job = Box<dyn FnOnce() -> Result<Vec<(usize, RecordBatch)>, DatagenError> + Send>;

/// A sink running on its own task, or inline when there is no Tokio runtime.
enum SinkWorker {
    Task {
        jobs: mpsc::Sender<Job>,
        done: JoinHandle<Result<SinkStats, DatagenError>>,
    },
    Inline(ParquetSink),
}

impl SinkWorker {
    fn start(sink: ParquetSink) -> Self {
        if tokio::runtime::Handle::try_current().is_err() {
            return Self::Inline(sink);
        }
        let (jobs, mut queue) = mpsc::channel::<Job>(2);
        let done = tokio::spawn(async move {
            let mut sink = sink;
            while let Some(job) = queue.recv().await {
                for (partition, batch) in job()? {
                    sink.write(partition, &batch).await?;
                }
            }
            sink.finish().await
        });
        Self::Task { jobs, done }
    }

    async fn submit(&mut self, job: Job) -> Result<(), DatagenError> {
        match self {
            Self::Inline(sink) => {
                for (partition, batch) in job()? {
                    sink.write(partition, &batch).await?;
                }
                Ok(())
            }
            Self::Task { jobs, done } => match jobs.send(job).await {
                Ok(()) => Ok(()),
                // The task stopped early: report its error.
                Err(_) => match done.await {
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(_)) => Err(worker_error("a sink stopped accepting data")),
                    Err(e) => Err(worker_error(&e.to_string())),
                },
            },
        }
    }

    async fn finish(self) -> Result<SinkStats, DatagenError> {
        match self {
            Self::Inline(sink) => sink.finish().await,
            Self::Task { jobs, done } => {
                drop(jobs);
                done.await.map_err(|e| worker_error(&e.to_string()))?
            }
        }
    }
}

fn worker_error(reason: &str) -> DatagenError {
    DatagenError::Worker {
        first: 0,
        end: 0,
        reason: format!("Parquet writer task: {reason}"),
    }
}

pub(crate) struct Output {
    crm: SinkWorker,
    web: SinkWorker,
    orders: SinkWorker,
    lines: SinkWorker,
    email: SinkWorker,
    ad_spend: SinkWorker,
    consents: SinkWorker,
    truth: SinkWorker,
    issued: Issued,
    visits: AdVisits,
}

impl Output {
    /// Removes stale objects of every source and of the truth, then starts the sinks.
    pub(crate) async fn create(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        plan: &Plan,
    ) -> Result<Self, DatagenError> {
        let raw = root.clone().join("raw");
        for source in SOURCES {
            delete_prefix(store.as_ref(), &raw.clone().join(*source)).await?;
        }
        let truth_dir = crate::TRUTH_FOLDER
            .split('/')
            .fold(root.clone(), |path, part| path.join(part));
        delete_prefix(store.as_ref(), &truth_dir).await?;

        let parts = || FileNaming::Parts {
            max_rows: MAX_FILE_ROWS,
        };
        let flat = |source: &str, schema| {
            SinkWorker::start(ParquetSink::new(
                store.clone(),
                vec![raw.clone().join(source)],
                schema,
                parts(),
            ))
        };
        let monthly = |source: &str, schema| {
            let dirs = plan
                .calendar
                .month_labels
                .iter()
                .map(|month| {
                    raw.clone()
                        .join(source)
                        .join(format!("event_month={month}"))
                })
                .collect();
            SinkWorker::start(ParquetSink::new(store.clone(), dirs, schema, parts()))
        };
        let truth = ParquetSink::new(
            store.clone(),
            vec![truth_dir],
            schema::truth_record_persons(),
            FileNaming::Single("part-0.parquet"),
        );
        Ok(Self {
            crm: flat("crm_customers", schema::crm_customers()),
            web: monthly("web_events", schema::web_events()),
            orders: flat("orders", schema::orders()),
            lines: flat("order_lines", schema::order_lines()),
            email: monthly("email_events", schema::email_events()),
            ad_spend: flat("ad_spend", schema::ad_spend()),
            consents: flat("consents", schema::consents()),
            truth: SinkWorker::start(truth),
            issued: Issued::default(),
            visits: AdVisits::new(plan.campaigns.ads.len()),
        })
    }

    pub(crate) async fn write_chunk(&mut self, chunk: ChunkOutput) -> Result<(), DatagenError> {
        let issued = self.issued;
        self.issued.advance(&chunk);
        self.visits.add(&chunk.ad_visits);
        let ChunkOutput {
            crm,
            web,
            orders,
            line_orders,
            lines,
            email,
            consents,
            truth,
            ..
        } = chunk;
        let orders_issued = issued.orders;
        self.crm
            .submit(source_job(
                schema::crm_customers(),
                "crm_customers",
                crm,
                RecordSource::Crm,
                issued,
            ))
            .await?;
        self.web
            .submit(source_job(
                schema::web_events(),
                "web_events",
                web,
                RecordSource::Web,
                issued,
            ))
            .await?;
        self.orders
            .submit(source_job(
                schema::orders(),
                "orders",
                orders,
                RecordSource::Orders,
                issued,
            ))
            .await?;
        self.lines
            .submit(Box::new(move || {
                lines_job(line_orders, lines, orders_issued)
            }))
            .await?;
        self.email
            .submit(source_job(
                schema::email_events(),
                "email_events",
                email,
                RecordSource::Email,
                issued,
            ))
            .await?;
        self.consents
            .submit(source_job(
                schema::consents(),
                "consents",
                consents,
                RecordSource::Consents,
                issued,
            ))
            .await?;
        self.truth
            .submit(Box::new(move || truth_job(truth, issued)))
            .await?;
        Ok(())
    }

    pub(crate) async fn write_ad_spend(&mut self, plan: &Plan) -> Result<(), DatagenError> {
        let batch = ad_spend_batch(plan, &self.visits).map_err(|source| DatagenError::Arrow {
            table: "ad_spend",
            source,
        })?;
        self.ad_spend
            .submit(Box::new(move || Ok(vec![(0, batch)])))
            .await
    }

    /// Closes every file; returns the per-source report (in SOURCES order) and the truth row count.
    pub(crate) async fn finish(self) -> Result<(Vec<SourceReport>, u64), DatagenError> {
        let stats = [
            ("crm_customers", self.crm.finish().await?),
            ("web_events", self.web.finish().await?),
            ("orders", self.orders.finish().await?),
            ("order_lines", self.lines.finish().await?),
            ("email_events", self.email.finish().await?),
            ("ad_spend", self.ad_spend.finish().await?),
            ("consents", self.consents.finish().await?),
        ];
        let truth = self.truth.finish().await?;
        let reports = stats
            .into_iter()
            .map(|(source, SinkStats { rows, files, bytes })| SourceReport {
                source: source.to_owned(),
                rows,
                files,
                bytes,
            })
            .collect();
        Ok((reports, truth.rows))
    }
}

/// Ids `issued + first + 1 ..` of `count` rows of a source.
fn id_column(source: RecordSource, issued: u64, first: usize, count: usize) -> ArrayRef {
    let (prefix, width) = id_format(source);
    let mut ids = Text::new(count);
    for n in first..first + count {
        ids.padded(prefix, issued + n as u64 + 1, width);
    }
    ids.finish()
}

/// Each month run (or the single run) of a chunk, prefixed with its id column.
fn source_job(
    schema: arrow::datatypes::SchemaRef,
    table: &'static str,
    chunk: SourceChunk,
    source: RecordSource,
    issued: Issued,
) -> Job {
    Box::new(move || {
        let issued = issued.get(source);
        chunk
            .months
            .iter()
            .filter(|(_, _, count)| *count > 0)
            .map(|&(partition, first, count)| {
                let columns: Columns = chunk
                    .columns
                    .iter()
                    .map(|c| c.slice(first, count))
                    .collect();
                let batch = batch_with_id(
                    &schema,
                    table,
                    id_column(source, issued, first, count),
                    columns,
                )?;
                Ok((partition, batch))
            })
            .collect()
    })
}

fn lines_job(
    line_orders: Vec<u32>,
    lines: Columns,
    orders_issued: u64,
) -> Result<Vec<(usize, RecordBatch)>, DatagenError> {
    let (prefix, width) = id_format(RecordSource::Orders);
    let mut order_ids = Text::new(line_orders.len());
    for local in line_orders {
        order_ids.padded(prefix, orders_issued + u64::from(local) + 1, width);
    }
    Ok(vec![(
        0,
        batch_with_id(
            &schema::order_lines(),
            "order_lines",
            order_ids.finish(),
            lines,
        )?,
    )])
}

fn truth_job(truth: TruthChunk, issued: Issued) -> Result<Vec<(usize, RecordBatch)>, DatagenError> {
    let mut record_ids = Text::new(truth.records.len());
    for &(source, local) in &truth.records {
        let (prefix, width) = id_format(source);
        record_ids.padded(prefix, issued.get(source) + u64::from(local) + 1, width);
    }
    let columns = vec![
        truth.sources,
        record_ids.finish(),
        truth.person_ids,
        truth.resolvable,
    ];
    let batch =
        RecordBatch::try_new(schema::truth_record_persons(), columns).map_err(|source| {
            DatagenError::Arrow {
                table: crate::TRUTH_FOLDER,
                source,
            }
        })?;
    Ok(vec![(0, batch)])
}

fn batch_with_id(
    schema: &arrow::datatypes::SchemaRef,
    table: &'static str,
    id: ArrayRef,
    rest: Columns,
) -> Result<RecordBatch, DatagenError> {
    let mut columns = Vec::with_capacity(rest.len() + 1);
    columns.push(id);
    columns.extend(rest);
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|source| DatagenError::Arrow { table, source })
}
