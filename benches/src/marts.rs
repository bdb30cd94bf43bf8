//! `cdphub-bench marts`: the customer marts built by cdphub's runner against the same SQL on
//! DuckDB over the same staged inputs (exported to Parquet), in one run.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::stitch::{PeerBench, Workspace, median};
use crate::{measured, peak};

/// The marts both engines build, in dependency order: plain SQL.
const SQL_MARTS: [&str; 6] = [
    "marts.customer_consents",
    "marts.customer_traits",
    "marts.purchase_summary",
    "marts.rfm_scores",
    "marts.daily_kpis",
    "marts.audience_win_back",
];
/// The marts that call cdphub's lifetime-value functions (no DuckDB equivalent).
const LTV_MARTS: [&str; 3] = [
    "marts.ltv_model",
    "marts.customer_ltv",
    "marts.audience_high_clv",
];
/// What the marts read, exported for DuckDB.
const INPUTS: [&str; 7] = [
    "staging.orders",
    "staging.order_lines",
    "staging.web_sessions",
    "staging.email_events",
    "staging.consents",
    "identity.record_links",
    "marts.customer_profiles",
];

#[derive(Serialize)]
struct MartsReport {
    benchmark: &'static str,
    scale: f64,
    seed: u64,
    cores: usize,
    sql_marts: Vec<&'static str>,
    ltv_marts: Vec<&'static str>,
    /// Rows of each input table.
    inputs: Vec<(String, u64)>,
    /// `cdphub run --select <sql marts>`: the run's own wall time (hub.runs: models
    /// computed, data-tested and published as Delta), the median of the rounds.
    cdphub_sql_marts_seconds_median: f64,
    cdphub_sql_marts_seconds: Vec<f64>,
    /// The same runs timed from outside, process start (opening the catalog) included.
    cdphub_sql_marts_process_seconds_median: f64,
    cdphub_sql_marts_peak_rss_mib: f64,
    /// DuckDB: the same SQL, CREATE TABLE AS and COPY TO Parquet, timed by the peer.
    duckdb_sql_marts_seconds_median: f64,
    duckdb_sql_marts_seconds: Vec<f64>,
    duckdb_peak_rss_mib: f64,
    /// cdphub_sql_marts_seconds_median / duckdb_sql_marts_seconds_median (<= 1: cdphub
    /// at least as fast).
    ratio: f64,
    /// Every mart, lifetime-value fits included (cdphub only).
    cdphub_all_marts_seconds_median: f64,
    cdphub_all_marts_peak_rss_mib: f64,
    /// Per model of the last all-marts run: (model, seconds, rows).
    cdphub_models: Vec<(String, f64, u64)>,
    duckdb_models: serde_json::Value,
}

pub fn marts(bench: &PeerBench, out: &Path) -> Result<()> {
    let Workspace { work, lake, fresh } = bench.prepare()?;
    let cdphub = |args: &[&str]| bench.cdphub(&lake, args);
    let run = |args: &[&str]| bench.run(&lake, args);
    let scalar = |sql: &str| -> Result<String> {
        let csv = run(&["query", "--format", "csv", sql])?;
        Ok(csv.lines().nth(1).context("one value")?.to_string())
    };
    if fresh {
        let (scale, seed) = (bench.scale.to_string(), bench.seed.to_string());
        eprintln!("generating scale {scale} and running every model once ...");
        run(&["demo", "generate", "--scale", &scale, "--seed", &seed])?;
        run(&["run"])?;
    }

    let inputs_dir = work.path().join("inputs");
    let duckdb_out = work.path().join("duckdb");
    std::fs::create_dir_all(&inputs_dir)?;
    std::fs::create_dir_all(&duckdb_out)?;
    let mut inputs = Vec::new();
    for table in INPUTS {
        let file = inputs_dir.join(format!("{table}.parquet"));
        let file = file.to_str().context("utf-8 temp path")?;
        run(&[
            "query",
            "--format",
            "parquet",
            "--output",
            file,
            &format!("SELECT * FROM {table}"),
        ])?;
        inputs.push((
            table.to_string(),
            scalar(&format!("SELECT count(*) FROM {table}"))?.parse()?,
        ));
    }

    let last_run_seconds = || -> Result<f64> {
        Ok(scalar(
            // Microseconds: to_unixtime() would round to whole seconds.
            "SELECT CAST(finished_at AS BIGINT) - CAST(started_at AS BIGINT) \
             FROM hub.runs ORDER BY started_at DESC LIMIT 1",
        )?
        .parse::<f64>()?
            / 1e6)
    };
    let sql_dir = bench.project.join("sql");
    let script = bench.project.join("benches/peers/marts.py");
    let (mut cdphub_sql, mut cdphub_process, mut cdphub_all, mut duckdb) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut cdphub_sql_peak, mut cdphub_all_peak, mut duckdb_peak) = (0.0_f64, 0.0_f64, 0.0_f64);
    let mut peer = serde_json::Value::Null;
    for round in 1..=bench.repeat {
        eprintln!("round {round}/{}: cdphub, SQL marts", bench.repeat);
        let mut select = vec!["run", "--select"];
        select.extend(SQL_MARTS);
        let mut command = cdphub(&select);
        command.stdout(Stdio::null());
        let (seconds, samples) = measured(command)?;
        cdphub_process.push(seconds);
        cdphub_sql.push(last_run_seconds()?);
        cdphub_sql_peak = cdphub_sql_peak.max(peak(&samples));

        eprintln!("round {round}/{}: DuckDB, SQL marts", bench.repeat);
        let result = work.path().join("peer.json");
        let mut command = Command::new(&bench.python);
        command
            .arg(&script)
            .arg(&inputs_dir)
            .arg(&sql_dir)
            .arg(&duckdb_out)
            .args(SQL_MARTS)
            .stdout(std::fs::File::create(&result)?);
        let (_, samples) = measured(command)?;
        duckdb_peak = duckdb_peak.max(peak(&samples));
        peer = serde_json::from_str(&std::fs::read_to_string(&result)?)?;
        // The peer's own clock: building and writing the marts, without Python's start.
        duckdb.push(peer["seconds"].as_f64().context("peer seconds")?);

        eprintln!("round {round}/{}: cdphub, every mart", bench.repeat);
        let mut select = vec!["run", "--select"];
        select.extend(SQL_MARTS.iter().chain(&LTV_MARTS));
        let mut command = cdphub(&select);
        command.stdout(Stdio::null());
        let (_, samples) = measured(command)?;
        cdphub_all.push(last_run_seconds()?);
        cdphub_all_peak = cdphub_all_peak.max(peak(&samples));
    }
    let models_csv = run(&[
        "query",
        "--format",
        "csv",
        "SELECT m.model, m.duration_ms, m.rows_written FROM hub.model_runs AS m \
         JOIN (SELECT run_id FROM hub.runs ORDER BY started_at DESC LIMIT 1) AS r USING (run_id) \
         ORDER BY m.model",
    ])?;
    let cdphub_models = models_csv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let model = fields.next()?.to_string();
            let ms: f64 = fields.next()?.parse().ok()?;
            let rows: u64 = fields.next()?.parse().ok()?;
            Some((model, ms / 1000.0, rows))
        })
        .collect();

    let report = MartsReport {
        benchmark: "marts",
        scale: bench.scale,
        seed: bench.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        sql_marts: SQL_MARTS.to_vec(),
        ltv_marts: LTV_MARTS.to_vec(),
        inputs,
        cdphub_sql_marts_seconds_median: median(&cdphub_sql),
        cdphub_sql_marts_seconds: cdphub_sql.clone(),
        cdphub_sql_marts_process_seconds_median: median(&cdphub_process),
        cdphub_sql_marts_peak_rss_mib: cdphub_sql_peak,
        duckdb_sql_marts_seconds_median: median(&duckdb),
        duckdb_sql_marts_seconds: duckdb.clone(),
        duckdb_peak_rss_mib: duckdb_peak,
        ratio: median(&cdphub_sql) / median(&duckdb),
        cdphub_all_marts_seconds_median: median(&cdphub_all),
        cdphub_all_marts_peak_rss_mib: cdphub_all_peak,
        cdphub_models,
        duckdb_models: peer["models"].clone(),
    };
    println!(
        "marts at scale {} (seed {}, {} cores)",
        report.scale, report.seed, report.cores
    );
    for (table, rows) in &report.inputs {
        println!("  input {table:<28} {rows:>12} rows");
    }
    println!(
        "  cdphub  SQL marts  median {:>8.2} s  (process {:.2} s)  peak RSS {:>7.1} MiB",
        report.cdphub_sql_marts_seconds_median,
        report.cdphub_sql_marts_process_seconds_median,
        report.cdphub_sql_marts_peak_rss_mib
    );
    println!(
        "  DuckDB  SQL marts  median {:>8.2} s                   peak RSS {:>7.1} MiB",
        report.duckdb_sql_marts_seconds_median, report.duckdb_peak_rss_mib
    );
    println!("  ratio cdphub / DuckDB: {:.2}", report.ratio);
    println!(
        "  cdphub  all marts (with the BG/NBD and Gamma-Gamma fits) median {:.2} s, peak RSS {:.1} MiB",
        report.cdphub_all_marts_seconds_median, report.cdphub_all_marts_peak_rss_mib
    );
    for (model, seconds, rows) in &report.cdphub_models {
        println!("    {model:<28} {seconds:>7.2} s {rows:>10} rows");
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
