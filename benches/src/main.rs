//! `cdphub-bench`: times the pipeline at a scale factor and writes the figures as JSON.
//!
//! It drives the release `cdphub` binary as a child process, samples the child's resident
//! memory, and reads per-model timings and row counts back from `hub.model_runs`.

mod attribution;
mod flight;
mod marts;
mod stitch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;

// The in-process benchmarks (attribution, stitch) run cdphub's engine: give it the allocator
// the cdphub binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cdphub-bench", about = "Benchmarks of cdphub, written as JSON")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Generate demo data at a scale, run every model, report time, rows and memory.
    Pipeline {
        /// 1 = 100,000 persons.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The cdphub binary (default: next to this one).
        #[arg(long)]
        cdphub: Option<PathBuf>,
        /// The project whose cdphub.toml and sql/ are benchmarked.
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Where to write the JSON report.
        #[arg(long, default_value = "bench-results/pipeline.json")]
        out: PathBuf,
    },
    /// Stitch the identity graph of a scale with cdphub's stitch() and, over the same edges,
    /// with iterative SQL label propagation on DuckDB; report medians and the ratio.
    Stitch {
        #[command(flatten)]
        peer: PeerArgs,
        #[arg(long, default_value = "bench-results/stitch.json")]
        out: PathBuf,
    },
    /// Flight SQL: streaming rate to pyarrow against local Parquet, and p50/p99 latency of
    /// concurrent dashboard clients.
    Flight {
        /// Scale of the demo lake the dashboards query (1 = 100,000 persons).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Rows of the wide table streamed to pyarrow.
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Concurrent dashboard clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// How long the dashboard clients run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long)]
        cdphub: Option<PathBuf>,
        /// The project (cdphub.toml with the demo users, sql/, .venv with pyarrow).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        #[arg(long, default_value = "bench-results/flight.json")]
        out: PathBuf,
        /// Serve this lake, already generated and run, instead of a fresh one (`--scale` and
        /// `--seed` are then only labels). The wide table lands in its `raw.bench_wide`.
        #[arg(long)]
        lake: Option<PathBuf>,
    },
    /// Build the customer marts with cdphub and the same SQL on DuckDB over the same staged
    /// inputs (exported to Parquet); report medians, the ratio and peak memory.
    Marts {
        #[command(flatten)]
        peer: PeerArgs,
        #[arg(long, default_value = "bench-results/marts.json")]
        out: PathBuf,
    },
    /// Time every attribution model over the demo journeys of a scale, and the rule models as
    /// SQL on DuckDB over the same journeys; report medians, ratios and peak memory.
    Attribution {
        #[command(flatten)]
        peer: PeerArgs,
        #[arg(long, default_value = "bench-results/attribution.json")]
        out: PathBuf,
    },
}

/// The options of a benchmark against a DuckDB peer.
#[derive(clap::Args)]
struct PeerArgs {
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timed repetitions of each side (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[arg(long)]
    cdphub: Option<PathBuf>,
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Python with duckdb installed (default: <project>/.venv/bin/python).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Benchmark this lake, already generated and run (e.g. by `cdphub demo --no-serve`),
    /// instead of generating a fresh one: several benchmarks can then share one large lake.
    /// `--scale` and `--seed` are then only labels in the report.
    #[arg(long)]
    lake: Option<PathBuf>,
}

impl PeerArgs {
    fn bench(self) -> Result<stitch::PeerBench> {
        Ok(stitch::PeerBench {
            scale: self.scale,
            seed: self.seed,
            repeat: self.repeat,
            cdphub: cdphub_binary(self.cdphub)?,
            python: self
                .python
                .unwrap_or_else(|| self.project.join(".venv/bin/python")),
            project: self.project,
            lake: self.lake,
        })
    }
}

#[derive(Serialize)]
struct PipelineReport {
    benchmark: &'static str,
    scale: f64,
    seed: u64,
    cores: usize,
    unix_time: u64,
    stages: Vec<StageReport>,
    models: Vec<ModelReport>,
}

#[derive(Serialize)]
struct StageReport {
    stage: String,
    seconds: f64,
    peak_rss_mib: f64,
}

#[derive(Serialize)]
struct ModelReport {
    model: String,
    seconds: f64,
    rows: i64,
    /// Highest resident memory of the process while this model ran (models run in parallel,
    /// so neighbours share the figure).
    peak_rss_mib_during: f64,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Bench::Pipeline {
            scale,
            seed,
            cdphub,
            project,
            out,
        } => pipeline(scale, seed, cdphub, &project, &out),
        Bench::Stitch { peer, out } => stitch::stitch(&peer.bench()?, &out),
        Bench::Marts { peer, out } => marts::marts(&peer.bench()?, &out),
        Bench::Flight {
            scale,
            seed,
            rows,
            clients,
            seconds,
            cdphub,
            project,
            out,
            lake,
        } => flight::run(flight::FlightOptions {
            scale,
            seed,
            cdphub: cdphub_binary(cdphub)?,
            project: std::path::absolute(&project)?,
            out,
            rows,
            clients,
            seconds,
            lake,
        }),
        Bench::Attribution { peer, out } => attribution::attribution(&peer.bench()?, &out),
    }
}

/// The cdphub binary to drive: the given one, or the one next to this harness.
fn cdphub_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    let cdphub = match given {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("cdphub"),
    };
    if !cdphub.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p cdphub` or pass --cdphub",
            cdphub.display()
        );
    }
    Ok(cdphub)
}

fn pipeline(
    scale: f64,
    seed: u64,
    cdphub: Option<PathBuf>,
    project: &Path,
    out: &Path,
) -> Result<()> {
    let cdphub = cdphub_binary(cdphub)?;
    let lake = tempfile::tempdir().context("temp dir for the benchmark lake")?;
    let lake_url = lake.path().to_string_lossy().to_string();
    let base = |args: &[&str]| {
        let mut command = Command::new(&cdphub);
        command
            .arg("--project")
            .arg(project)
            .arg("--lake")
            .arg(&lake_url)
            .args(args)
            .stdout(Stdio::null());
        command
    };

    let scale_text = scale.to_string();
    let seed_text = seed.to_string();
    let (generate_seconds, generate_samples) = measured(base(&[
        "demo",
        "generate",
        "--scale",
        &scale_text,
        "--seed",
        &seed_text,
    ]))?;
    let (run_seconds, run_samples) = measured(base(&["run"]))?;

    let json = Command::new(&cdphub)
        .arg("--project")
        .arg(project)
        .arg("--lake")
        .arg(&lake_url)
        .args([
            "query",
            "--format",
            "json",
            "SELECT model, rows_written, duration_ms, \
             CAST(to_unixtime(started_at) * 1000 AS BIGINT) AS started_ms, \
             CAST(to_unixtime(finished_at) * 1000 AS BIGINT) AS finished_ms \
             FROM hub.model_runs ORDER BY started_at",
        ])
        .output()?;
    if !json.status.success() {
        bail!(
            "reading hub.model_runs failed: {}",
            String::from_utf8_lossy(&json.stderr)
        );
    }
    let mut models = Vec::new();
    for line in String::from_utf8(json.stdout)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let started = row["started_ms"].as_i64().unwrap_or_default();
        let finished = row["finished_ms"].as_i64().unwrap_or_default();
        models.push(ModelReport {
            model: row["model"].as_str().unwrap_or_default().to_string(),
            seconds: row["duration_ms"].as_i64().unwrap_or_default() as f64 / 1000.0,
            rows: row["rows_written"].as_i64().unwrap_or_default(),
            peak_rss_mib_during: peak_between(&run_samples, started, finished),
        });
    }

    let report = PipelineReport {
        benchmark: "pipeline",
        scale,
        seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        unix_time: SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
        stages: vec![
            StageReport {
                stage: "generate".into(),
                seconds: generate_seconds,
                peak_rss_mib: peak(&generate_samples),
            },
            StageReport {
                stage: "run".into(),
                seconds: run_seconds,
                peak_rss_mib: peak(&run_samples),
            },
        ],
        models,
    };
    print_report(&report);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

/// (unix milliseconds, resident MiB)
pub(crate) type Sample = (i64, f64);

/// Runs the command to completion, sampling its resident memory every 20 ms.
pub(crate) fn measured(mut command: Command) -> Result<(f64, Vec<Sample>)> {
    let started = Instant::now();
    let mut child = command.spawn().context("start cdphub")?;
    let mut samples = Vec::new();
    loop {
        if let Some(rss) = resident_mib(child.id()) {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
            samples.push((now, rss));
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{command:?} failed with {status}");
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((started.elapsed().as_secs_f64(), samples))
}

fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(crate) fn peak(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.1).fold(0.0, f64::max)
}

fn peak_between(samples: &[Sample], from_ms: i64, to_ms: i64) -> f64 {
    samples
        .iter()
        .filter(|(t, _)| *t >= from_ms && *t <= to_ms)
        .map(|s| s.1)
        .fold(0.0, f64::max)
}

fn print_report(report: &PipelineReport) {
    println!(
        "pipeline at scale {} (seed {}, {} cores)",
        report.scale, report.seed, report.cores
    );
    for stage in &report.stages {
        println!(
            "  {:<10} {:>8.2} s  peak RSS {:>8.1} MiB",
            stage.stage, stage.seconds, stage.peak_rss_mib
        );
    }
    println!(
        "  {:<28} {:>8} {:>12} {:>12}",
        "model", "seconds", "rows", "peak MiB"
    );
    for model in &report.models {
        println!(
            "  {:<28} {:>8.2} {:>12} {:>12.1}",
            model.model, model.seconds, model.rows, model.peak_rss_mib_during
        );
    }
}
