//! `cdphub-bench stitch`: cdphub's union-find stitch against iterative SQL label
//! propagation on DuckDB, over the same identity edges, in one run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::{measured, peak};

/// A benchmark against a DuckDB peer in the project virtualenv.
pub struct PeerBench {
    pub scale: f64,
    pub seed: u64,
    pub repeat: usize,
    pub cdphub: PathBuf,
    pub python: PathBuf,
    pub project: PathBuf,
    /// A lake to reuse (`--lake`); `None` generates a fresh one in a temporary folder.
    pub lake: Option<PathBuf>,
}

/// Where a benchmark works: a scratch folder for its exports and the lake it reads.
pub(crate) struct Workspace {
    pub work: tempfile::TempDir,
    pub lake: PathBuf,
    /// The lake is new and empty: the benchmark generates the demo data and runs its models.
    pub fresh: bool,
}

#[derive(Serialize)]
struct StitchReport {
    benchmark: &'static str,
    scale: f64,
    seed: u64,
    cores: usize,
    links: u64,
    identifiers: u64,
    cdphub_persons: u64,
    duckdb_components: u64,
    duckdb_iterations: u64,
    /// stitch()'s own clock, as the peer's: reading the links, stitching, building the result.
    cdphub_stitch_seconds_median: f64,
    cdphub_stitch_seconds: Vec<f64>,
    /// Whole `cdphub query` over stitch(): process start, catalog, the stitch, counting.
    cdphub_seconds_median: f64,
    cdphub_seconds: Vec<f64>,
    /// The same process reading the links without stitching, for the fixed costs.
    cdphub_read_only_seconds_median: f64,
    cdphub_peak_rss_mib: f64,
    duckdb_seconds_median: f64,
    duckdb_seconds: Vec<f64>,
    duckdb_peak_rss_mib: f64,
    /// duckdb_seconds_median / cdphub_stitch_seconds_median: the two engines' own clocks.
    speedup: f64,
    /// duckdb_seconds_median / cdphub_seconds_median: cdphub's whole process.
    speedup_whole_process: f64,
}

/// The stitch's own time in seconds, from the `stitch output built total_ms=…` debug line.
fn stitch_clock(log: &str) -> Result<f64> {
    let line = log
        .lines()
        .find(|line| line.contains("stitch output built"))
        .with_context(|| format!("no `stitch output built` line in cdphub's log:\n{log}"))?;
    let (_, rest) = line
        .split_once("total_ms=")
        .context("total_ms in the stitch log line")?;
    let millis: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Ok(millis.parse::<f64>()? / 1000.0)
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

impl PeerBench {
    /// Checks that the peer can run; a work folder and the lake to benchmark.
    pub(crate) fn prepare(&self) -> Result<Workspace> {
        if !self.python.exists() {
            bail!(
                "{} not found: run `scripts/s3-server.sh install` to create the project virtualenv (it installs duckdb)",
                self.python.display()
            );
        }
        let work = tempfile::tempdir().context("temp dir for the benchmark lake")?;
        let (lake, fresh) = match &self.lake {
            Some(lake) if lake.join("curated").is_dir() => (std::path::absolute(lake)?, false),
            Some(lake) => bail!(
                "--lake {}: no curated/ folder there; run `cdphub --lake {0} demo --no-serve` first, or leave --lake out for a fresh lake",
                lake.display()
            ),
            None => (work.path().join("lake"), true),
        };
        Ok(Workspace { work, lake, fresh })
    }

    /// `cdphub --project <project> --lake <lake> <args>`.
    pub(crate) fn cdphub(&self, lake: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.cdphub);
        command
            .arg("--project")
            .arg(&self.project)
            .arg("--lake")
            .arg(lake)
            .args(args);
        command
    }

    /// Runs cdphub to success and returns what it printed.
    pub(crate) fn run(&self, lake: &Path, args: &[&str]) -> Result<String> {
        let output = self.cdphub(lake, args).output()?;
        if !output.status.success() {
            bail!(
                "cdphub {args:?} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8(output.stdout)?)
    }
}

pub fn stitch(bench: &PeerBench, out: &Path) -> Result<()> {
    let Workspace { work, lake, fresh } = bench.prepare()?;
    let cdphub = |args: &[&str]| bench.cdphub(&lake, args);
    let run = |args: &[&str]| bench.run(&lake, args);
    if fresh {
        let scale = bench.scale.to_string();
        let seed = bench.seed.to_string();
        eprintln!("generating scale {scale} and building identity.links ...");
        run(&["demo", "generate", "--scale", &scale, "--seed", &seed])?;
        run(&["run", "--select", "+identity.links"])?;
    }
    let edges = work.path().join("edges.parquet");
    run(&[
        "query",
        "--format",
        "parquet",
        "--output",
        edges.to_str().context("utf-8 temp path")?,
        "SELECT id_type, id_value, linked_type, linked_value FROM identity.links",
    ])?;

    let counts_sql = "SELECT count(*) AS identifiers, count(DISTINCT unified_id) AS persons FROM stitch('identity.links')";
    let counts = run(&["query", "--format", "csv", counts_sql])?;
    let values: Vec<u64> = counts
        .lines()
        .nth(1)
        .context("stitch counts")?
        .split(',')
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let links: u64 = run(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) FROM identity.links",
    ])?
    .lines()
    .nth(1)
    .context("link count")?
    .parse()?;

    let mut cdphub_seconds = Vec::new();
    let mut function_seconds = Vec::new();
    let mut cdphub_peak: f64 = 0.0;
    let mut read_only = Vec::new();
    let log = work.path().join("stitch.log");
    for round in 0..bench.repeat {
        eprintln!("round {}/{}: cdphub stitch", round + 1, bench.repeat);
        let mut command = cdphub(&["query", "--format", "csv", counts_sql]);
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .env("CDPHUB_LOG", "warn,cdphub_functions::identity=debug")
            .env("NO_COLOR", "1");
        let (seconds, samples) = measured(command)?;
        cdphub_seconds.push(seconds);
        function_seconds.push(stitch_clock(&std::fs::read_to_string(&log)?)?);
        cdphub_peak = cdphub_peak.max(peak(&samples));
        let mut command = cdphub(&[
            "query",
            "--format",
            "csv",
            // Every byte of the four link columns, with next to no work on them.
            "SELECT sum(length(id_type) + length(id_value) + length(linked_type) + length(linked_value)) FROM identity.links",
        ]);
        command.stdout(Stdio::null());
        read_only.push(measured(command)?.0);
    }

    let mut duckdb_seconds = Vec::new();
    let mut duckdb_peak: f64 = 0.0;
    let mut peer = serde_json::Value::Null;
    let script = bench.project.join("benches/peers/label_propagation.py");
    for round in 0..bench.repeat {
        eprintln!(
            "round {}/{}: DuckDB label propagation",
            round + 1,
            bench.repeat
        );
        let result = work.path().join("peer.json");
        let mut command = Command::new(&bench.python);
        command
            .arg(&script)
            .arg(&edges)
            .stdout(std::fs::File::create(&result)?);
        let (_, samples) = measured(command)?;
        duckdb_peak = duckdb_peak.max(peak(&samples));
        peer = serde_json::from_str(&std::fs::read_to_string(&result)?)?;
        // The peer's own clock: its load and propagation, without Python's start.
        duckdb_seconds.push(peer["seconds"].as_f64().context("peer seconds")?);
    }

    let cdphub_median = median(&cdphub_seconds);
    let function_median = median(&function_seconds);
    let duckdb_median = median(&duckdb_seconds);
    let report = StitchReport {
        benchmark: "stitch",
        scale: bench.scale,
        seed: bench.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        links,
        identifiers: values.first().copied().unwrap_or(0),
        cdphub_persons: values.get(1).copied().unwrap_or(0),
        duckdb_components: peer["components"].as_u64().unwrap_or(0),
        duckdb_iterations: peer["iterations"].as_u64().unwrap_or(0),
        cdphub_stitch_seconds_median: function_median,
        cdphub_stitch_seconds: function_seconds,
        cdphub_seconds_median: cdphub_median,
        cdphub_seconds,
        cdphub_read_only_seconds_median: median(&read_only),
        cdphub_peak_rss_mib: cdphub_peak,
        duckdb_seconds_median: duckdb_median,
        duckdb_seconds,
        duckdb_peak_rss_mib: duckdb_peak,
        speedup: duckdb_median / function_median,
        speedup_whole_process: duckdb_median / cdphub_median,
    };
    println!(
        "stitch at scale {} ({} links, {} identifiers, {} cores)",
        report.scale, report.links, report.identifiers, report.cores
    );
    println!(
        "  cdphub stitch()          median {:>8.2} s  (whole process {:.2} s, reading the links alone {:.2} s)  peak RSS {:>7.1} MiB  {} persons",
        report.cdphub_stitch_seconds_median,
        report.cdphub_seconds_median,
        report.cdphub_read_only_seconds_median,
        report.cdphub_peak_rss_mib,
        report.cdphub_persons
    );
    println!(
        "  DuckDB label propagation median {:>8.2} s  ({} iterations)  peak RSS {:>7.1} MiB  {} components",
        report.duckdb_seconds_median,
        report.duckdb_iterations,
        report.duckdb_peak_rss_mib,
        report.duckdb_components
    );
    println!(
        "  cdphub is {:.1}x faster ({:.1}x counting its whole process)",
        report.speedup, report.speedup_whole_process
    );
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
