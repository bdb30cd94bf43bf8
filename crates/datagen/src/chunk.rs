//! Generation of one chunk of consecutive persons: simulate, order by time, compute the
//! truth and build Arrow columns. Pure and deterministic, so chunks can be generated on
//! worker threads while earlier ones are written.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray};

use crate::DatagenError;
use crate::calendar::Micros;
use crate::columns::{self, Columns, Text};
use crate::life::simulate_person;
use crate::plan::Plan;
use crate::population::Population;
use crate::rows::ChunkRows;
use crate::truth::{IdCollector, PersonRecord, resolve};

/// The person-bearing sources, in the order of their record_id prefixes
/// ("CRM" < "CS" < "EE" < "O" < "WE"), which the truth's tie-break relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RecordSource {
    Crm,
    Consents,
    Email,
    Orders,
    Web,
}

impl RecordSource {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Crm => "crm_customers",
            Self::Consents => "consents",
            Self::Email => "email_events",
            Self::Orders => "orders",
            Self::Web => "web_events",
        }
    }
}

/// One source's rows of a chunk, as columns without the id column.
pub(crate) struct SourceChunk {
    pub rows: usize,
    pub columns: Columns,
    /// Month partition of each run of rows: (month index, first row, row count).
    pub months: Vec<(usize, usize, usize)>,
}

pub(crate) struct TruthChunk {
    /// The source and chunk-local record number of each truth row.
    pub records: Vec<(RecordSource, u32)>,
    pub sources: ArrayRef,
    pub person_ids: ArrayRef,
    pub resolvable: ArrayRef,
}

pub(crate) struct ChunkOutput {
    pub persons: Range<u32>,
    pub crm: SourceChunk,
    pub web: SourceChunk,
    pub orders: SourceChunk,
    /// Chunk-local order number of each order line, and the other columns.
    pub line_orders: Vec<u32>,
    pub lines: Columns,
    pub email: SourceChunk,
    pub consents: SourceChunk,
    pub truth: TruthChunk,
    pub ad_visits: Vec<(u16, u32)>,
}

pub(crate) fn generate_chunk(
    plan: &Plan,
    population: &Population,
    persons: Range<u32>,
) -> Result<ChunkOutput, DatagenError> {
    let mut rows = ChunkRows::default();
    for index in persons.clone() {
        simulate_person(plan, &population.persons[index as usize], index, &mut rows);
    }
    // Record numbers follow time within a chunk, as a source system would assign them.
    rows.crm.sort_by_key(|r| r.created_at);
    rows.web.sort_by_key(|r| r.occurred_at);
    rows.orders.sort_by_key(|r| r.ordered_at);
    rows.email.sort_by_key(|r| r.occurred_at);
    rows.consents.sort_by_key(|r| r.occurred_at);

    let truth = chunk_truth(&rows, population, persons.clone());
    let arrow = |table: &'static str| move |source| DatagenError::Arrow { table, source };
    let (line_orders, lines) =
        columns::order_lines(plan, &rows.orders).map_err(arrow("order_lines"))?;
    Ok(ChunkOutput {
        crm: unpartitioned(rows.crm.len(), columns::crm(&rows.crm)),
        web: partitioned(
            plan,
            columns::web(plan, &rows.web),
            rows.web.iter().map(|r| r.occurred_at),
        ),
        orders: unpartitioned(
            rows.orders.len(),
            columns::orders(plan, &rows.orders).map_err(arrow("orders"))?,
        ),
        line_orders,
        lines,
        email: partitioned(
            plan,
            columns::email(plan, &rows.email),
            rows.email.iter().map(|r| r.occurred_at),
        ),
        consents: unpartitioned(rows.consents.len(), columns::consents(&rows.consents)),
        truth,
        ad_visits: rows.ad_visits,
        persons,
    })
}

fn unpartitioned(rows: usize, columns: Columns) -> SourceChunk {
    SourceChunk {
        rows,
        columns,
        months: vec![(0, 0, rows)],
    }
}

/// Splits time-sorted rows into runs of the same month.
fn partitioned(plan: &Plan, columns: Columns, times: impl Iterator<Item = Micros>) -> SourceChunk {
    let mut months: Vec<(usize, usize, usize)> = Vec::new();
    let mut rows = 0;
    for (i, t) in times.enumerate() {
        let month = plan.calendar.month_of(t);
        match months.last_mut() {
            Some((m, _, len)) if *m == month => *len += 1,
            _ => months.push((month, i, 1)),
        }
        rows += 1;
    }
    SourceChunk {
        rows,
        columns,
        months,
    }
}

/// Resolves each person of the chunk and lists one truth row per record.
fn chunk_truth(rows: &ChunkRows, population: &Population, persons: Range<u32>) -> TruthChunk {
    let first = persons.start;
    let mut by_person: Vec<Vec<(RecordSource, u32)>> = vec![Vec::new(); persons.len()];
    let mut add = |source: RecordSource, people: &mut dyn Iterator<Item = u32>| {
        for (local, person) in people.enumerate() {
            by_person[(person - first) as usize].push((source, local as u32));
        }
    };
    add(RecordSource::Crm, &mut rows.crm.iter().map(|r| r.person));
    add(RecordSource::Web, &mut rows.web.iter().map(|r| r.person));
    add(
        RecordSource::Orders,
        &mut rows.orders.iter().map(|r| r.person),
    );
    add(
        RecordSource::Email,
        &mut rows.email.iter().map(|r| r.person),
    );
    add(
        RecordSource::Consents,
        &mut rows.consents.iter().map(|r| r.person),
    );

    let total: usize = by_person.iter().map(Vec::len).sum();
    let mut records = Vec::with_capacity(total);
    let mut sources = Text::new(total);
    let mut person_ids = Text::new(total);
    let mut resolvable = Vec::with_capacity(total);
    for (offset, person_records) in by_person.into_iter().enumerate() {
        let person = first + offset as u32;
        let shared_device = population.persons[person as usize].shared_device;
        let linked: Vec<PersonRecord<(RecordSource, u32)>> = person_records
            .iter()
            .map(|&(source, local)| PersonRecord {
                record_key: (source, local),
                ids: record_ids(rows, shared_device, source, local),
            })
            .collect();
        for ((source, local), flag) in person_records.into_iter().zip(resolve(&linked)) {
            records.push((source, local));
            sources.str(source.name());
            columns::write_person_id(&mut person_ids, person);
            resolvable.push(Some(flag));
        }
    }
    TruthChunk {
        records,
        sources: sources.finish(),
        person_ids: person_ids.finish(),
        resolvable: Arc::new(resolvable.into_iter().collect::<BooleanArray>()),
    }
}

fn record_ids(
    rows: &ChunkRows,
    shared_device: Option<u64>,
    source: RecordSource,
    local: u32,
) -> Vec<crate::truth::IdKey> {
    let mut collector = IdCollector::new(shared_device);
    let i = local as usize;
    match source {
        RecordSource::Crm => collector.crm(&rows.crm[i]),
        RecordSource::Web => collector.web(&rows.web[i]),
        RecordSource::Orders => collector.order(&rows.orders[i]),
        RecordSource::Email => collector.email_event(&rows.email[i]),
        RecordSource::Consents => collector.consent(&rows.consents[i]),
    }
    collector.ids
}
