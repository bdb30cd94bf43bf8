//! `cdphub-datagen`: the deterministic demo data generator.
//!
//! It writes the raw extracts of a French omnichannel retailer (fashion and home; stores,
//! web and app) as Parquet under `<root>/raw/<source>/`, plus the ground truth of which
//! person is behind every record under `<root>/_truth/record_persons/part-0.parquet`.
//! The same `(scale, seed)` always produces byte-identical files. See README.md for the
//! sources, their columns and the realism features.

#![forbid(unsafe_code)]

mod ad_spend;
mod calendar;
mod catalog;
mod chunk;
mod columns;
mod error;
pub mod identifiers;
mod life;
mod output;
mod plan;
mod population;
mod reference;
mod rng;
mod rows;
pub mod schema;
mod sink;
mod truth;

use std::ops::Range;
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

pub use error::DatagenError;

use chunk::{ChunkOutput, generate_chunk};
use output::Output;
use plan::Plan;
use population::Population;

/// The raw sources, in the order reports list them.
pub const SOURCES: &[&str] = &[
    "crm_customers",
    "web_events",
    "orders",
    "order_lines",
    "email_events",
    "ad_spend",
    "consents",
];

/// Persons generated at scale 1.0.
/// Where the ground truth lands, relative to the lake root.
pub const TRUTH_FOLDER: &str = "_truth/record_persons";

pub const PERSONS_PER_SCALE: f64 = 100_000.0;
/// Largest accepted scale (100 million persons).
pub const MAX_SCALE: f64 = 1_000.0;

/// Persons simulated per unit of work; a constant so output never depends on threads.
const CHUNK_PERSONS: u32 = 2_048;
/// Chunks generated ahead while earlier ones are being written.
const CHUNKS_IN_FLIGHT: usize = 3;

/// How much data to generate and from which seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateOptions {
    /// 1.0 = 100,000 persons; fractional scales such as 0.01 (1,000 persons) are fine.
    pub scale: f64,
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            scale: 1.0,
            seed: 42,
        }
    }
}

impl GenerateOptions {
    /// The number of persons these options generate, or why they are invalid.
    pub fn persons(&self) -> Result<u32, DatagenError> {
        let scale = self.scale;
        if !scale.is_finite() || scale <= 0.0 {
            return Err(DatagenError::InvalidOptions {
                reason: format!("scale must be a positive number, got {scale}"),
            });
        }
        if scale > MAX_SCALE {
            return Err(DatagenError::InvalidOptions {
                reason: format!(
                    "scale {scale} is above the maximum of {MAX_SCALE} ({} persons)",
                    MAX_SCALE * PERSONS_PER_SCALE
                ),
            });
        }
        let persons = (scale * PERSONS_PER_SCALE).round();
        if persons < 1.0 {
            return Err(DatagenError::InvalidOptions {
                reason: format!(
                    "scale {scale} gives no person at all; use at least {}",
                    1.0 / PERSONS_PER_SCALE
                ),
            });
        }
        Ok(persons as u32)
    }
}

/// What was written for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub source: String,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// What a generation run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateReport {
    pub persons: u64,
    /// One entry per source, in [`SOURCES`] order.
    pub sources: Vec<SourceReport>,
    /// Rows of `_truth/record_persons`.
    pub truth_rows: u64,
}

/// Progress callbacks: a stage starts with its total units, then advances.
pub trait Progress: Send + Sync {
    fn stage(&self, name: &str, total_units: u64);
    fn advance(&self, units: u64);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _name: &str, _total_units: u64) {}
    fn advance(&self, _units: u64) {}
}

/// Generates the demo lake under `root` in `store`, replacing any previous generation.
///
/// Stages reported to `progress`: "persons" and "records" (units: persons), then
/// "ad_spend" and "finish" (one unit each). Must run inside a Tokio runtime when the
/// store needs one (local files, S3); chunk generation then uses Tokio's blocking pool.
pub async fn generate(
    store: Arc<dyn ObjectStore>,
    root: &Path,
    opts: &GenerateOptions,
    progress: &dyn Progress,
) -> Result<GenerateReport, DatagenError> {
    let persons = opts.persons()?;
    let plan = Arc::new(Plan::new(opts.seed));

    progress.stage("persons", u64::from(persons));
    let population = Arc::new(Population::build(opts.seed, persons, &plan.keys, |n| {
        progress.advance(n)
    }));

    let mut output = Output::create(store, root, &plan).await?;
    progress.stage("records", u64::from(persons));
    let mut chunks = futures::stream::iter(chunk_ranges(persons))
        .map(|range| generate_in_background(plan.clone(), population.clone(), range))
        .buffered(CHUNKS_IN_FLIGHT);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let done = chunk.persons.len() as u64;
        output.write_chunk(chunk).await?;
        progress.advance(done);
    }

    progress.stage("ad_spend", 1);
    output.write_ad_spend(&plan).await?;
    progress.advance(1);

    progress.stage("finish", 1);
    let (sources, truth_rows) = output.finish().await?;
    progress.advance(1);
    Ok(GenerateReport {
        persons: u64::from(persons),
        sources,
        truth_rows,
    })
}

fn chunk_ranges(persons: u32) -> impl Iterator<Item = Range<u32>> {
    (0..persons.div_ceil(CHUNK_PERSONS))
        .map(move |c| c * CHUNK_PERSONS..((c + 1) * CHUNK_PERSONS).min(persons))
}

/// Generates a chunk on Tokio's blocking pool when available, inline otherwise.
async fn generate_in_background(
    plan: Arc<Plan>,
    population: Arc<Population>,
    range: Range<u32>,
) -> Result<ChunkOutput, DatagenError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return generate_chunk(&plan, &population, range);
    }
    let (first, end) = (u64::from(range.start), u64::from(range.end));
    tokio::task::spawn_blocking(move || generate_chunk(&plan, &population, range))
        .await
        .map_err(|e| DatagenError::Worker {
            first,
            end,
            reason: e.to_string(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let persons = |scale| GenerateOptions { scale, seed: 1 }.persons();
        assert_eq!(persons(1.0).unwrap(), 100_000);
        assert_eq!(persons(0.01).unwrap(), 1_000);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e6, 1e-9] {
            let err = persons(bad).unwrap_err();
            assert!(
                matches!(err, DatagenError::InvalidOptions { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn chunks_cover_all_persons() {
        let ranges: Vec<_> = chunk_ranges(5000).collect();
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, 5000);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(chunk_ranges(0).count(), 0);
    }
}
