//! `cdphub-bench attribution`: every attribution model of cdphub over the demo journeys, and
//! the rule models as SQL on DuckDB over the same journeys, in one run.
//!
//! The journeys come from the demo pipeline (`marts.journeys`, built by the release `cdphub`
//! binary, whose mart build times are reported too), exported to Parquet. Both engines then
//! load them into memory and, per model, credit every touchpoint of every converted journey
//! and sum the credits per channel: cdphub with `attribute_journey` (rules) or
//! `attribute` + `credit_path` (Markov, Shapley) in DataFusion, DuckDB with window functions.
//! The channel totals of the two engines are compared, so the race is over the same answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cdphub_functions::{AttributionSettings, IdentityConfig, register_all, register_attribution};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::datasource::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde::Serialize;

use crate::stitch::{PeerBench, Workspace};
use crate::{measured, peak};

const RULES: [&str; 6] = [
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
];
const FITTED: [&str; 4] = ["markov", "markov_2", "markov_3", "shapley"];
const MARTS: [&str; 5] = [
    "marts.journey_events",
    "marts.journeys",
    "marts.channel_attribution",
    "marts.attribution_credits",
    "marts.campaign_performance",
];

#[derive(Serialize)]
struct AttributionReport {
    benchmark: &'static str,
    scale: f64,
    seed: u64,
    cores: usize,
    journeys: usize,
    converted_journeys: usize,
    touchpoints_in_converted_journeys: usize,
    /// What `pipeline_seconds` ran: `+marts.campaign_performance` on a fresh lake, the
    /// attribution marts alone on a reused one (`--lake`).
    pipeline_selection: String,
    /// `cdphub run --select <pipeline_selection>`, in the release binary.
    pipeline_seconds: f64,
    pipeline_peak_rss_mib: f64,
    marts: Vec<MartReport>,
    models: Vec<ModelReport>,
    /// Resident memory high-water mark of this process (cdphub's engine, journeys loaded).
    cdphub_peak_rss_mib: f64,
    duckdb_peak_rss_mib: f64,
    duckdb_version: String,
    duckdb_threads: String,
    /// Largest relative difference between the two engines' channel totals (rule models).
    max_relative_difference: f64,
}

#[derive(Serialize)]
struct MartReport {
    model: String,
    seconds: f64,
    rows: i64,
}

#[derive(Serialize)]
struct ModelReport {
    model: String,
    cdphub_seconds_median: f64,
    cdphub_seconds: Vec<f64>,
    /// Markov and Shapley: fitting the channel values alone (the rest spreads conversions).
    #[serde(skip_serializing_if = "Option::is_none")]
    cdphub_fit_seconds_median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duckdb_seconds_median: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    duckdb_seconds: Vec<f64>,
    /// cdphub / DuckDB: below 1, cdphub is faster.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio: Option<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Per-touchpoint credits of every converted journey, summed per channel.
fn cdphub_sql(model: &str) -> String {
    let credits = if RULES.contains(&model) {
        format!(
            "SELECT unnest(attribute_journey(channels, touched_at, converted_at, revenue, '{model}')) AS c \
             FROM journeys WHERE converted"
        )
    } else {
        format!(
            "WITH fit AS ({}) \
             SELECT unnest(credit_path(j.channels, j.revenue, fit.v)) AS c \
             FROM journeys AS j CROSS JOIN fit WHERE j.converted",
            fit_sql(model)
        )
    };
    format!(
        "SELECT c['channel'] AS channel, sum(c['credit']) AS conversions, \
         sum(c['revenue_credit']) AS revenue FROM ({credits}) GROUP BY c['channel']"
    )
}

fn fit_sql(model: &str) -> String {
    format!(
        "SELECT attribute(channels, CASE WHEN converted THEN 1 ELSE 0 END, \
         CASE WHEN converted THEN 0 ELSE 1 END, revenue, '{model}') AS v FROM journeys"
    )
}

type ChannelTotals = BTreeMap<String, (f64, f64)>;

fn channel_totals(batches: &[RecordBatch]) -> Result<ChannelTotals> {
    let mut totals = BTreeMap::new();
    for batch in batches {
        let channels = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        let channels = channels.as_string::<i32>();
        let conversions = batch.column(1).as_primitive::<Float64Type>();
        let revenue = batch.column(2).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            totals.insert(
                channels.value(row).to_string(),
                (conversions.value(row), revenue.value(row)),
            );
        }
    }
    Ok(totals)
}

async fn timed(ctx: &SessionContext, sql: &str) -> Result<(f64, Vec<RecordBatch>)> {
    let started = Instant::now();
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok((started.elapsed().as_secs_f64(), batches))
}

struct CdphubRun {
    journeys: usize,
    converted: usize,
    touchpoints: usize,
    seconds: BTreeMap<String, Vec<f64>>,
    fit_seconds: BTreeMap<String, Vec<f64>>,
    totals: BTreeMap<String, ChannelTotals>,
}

/// Loads the journeys into memory and times every model, `repeat` times.
async fn run_cdphub(journeys: &Path, repeat: usize) -> Result<CdphubRun> {
    let ctx = SessionContext::new();
    register_all(&ctx, &IdentityConfig::default(), "benchmark")?;
    register_attribution(&ctx, &AttributionSettings::default(), "benchmark")?;
    let path = journeys.to_str().context("utf-8 path")?;
    let frame = ctx
        .read_parquet(path, ParquetReadOptions::default())
        .await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    // One partition per core, as DuckDB uses every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut partitions = vec![Vec::new(); cores];
    for (index, batch) in batches.into_iter().enumerate() {
        partitions[index % cores].push(batch);
    }
    ctx.register_table("journeys", Arc::new(MemTable::try_new(schema, partitions)?))?;

    let count = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await?.collect().await?;
            let value = batches[0]
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0);
            anyhow::Ok(usize::try_from(value)?)
        }
    };
    let mut run = CdphubRun {
        journeys: count("SELECT count(*) FROM journeys").await?,
        converted: count("SELECT count(*) FROM journeys WHERE converted").await?,
        touchpoints: count(
            "SELECT CAST(sum(cardinality(channels)) AS BIGINT) FROM journeys WHERE converted",
        )
        .await?,
        seconds: BTreeMap::new(),
        fit_seconds: BTreeMap::new(),
        totals: BTreeMap::new(),
    };
    for model in RULES.iter().chain(&FITTED) {
        eprintln!("cdphub: {model}");
        let sql = cdphub_sql(model);
        for _ in 0..repeat {
            let (seconds, batches) = timed(&ctx, &sql).await?;
            run.seconds
                .entry(model.to_string())
                .or_default()
                .push(seconds);
            run.totals
                .insert(model.to_string(), channel_totals(&batches)?);
        }
        if FITTED.contains(model) {
            for _ in 0..repeat {
                let (seconds, _) = timed(&ctx, &fit_sql(model)).await?;
                run.fit_seconds
                    .entry(model.to_string())
                    .or_default()
                    .push(seconds);
            }
        }
    }
    Ok(run)
}

/// VmHWM of this process, in MiB.
fn own_peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn attribution(bench: &PeerBench, out: &Path) -> Result<()> {
    if bench.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let Workspace { work, lake, fresh } = bench.prepare()?;
    let cdphub = |args: &[&str]| bench.cdphub(&lake, args);
    let run = |args: &[&str]| bench.run(&lake, args);
    // A fresh lake runs the pipeline up to the marts; a reused one rebuilds the marts alone.
    let selection = if fresh {
        let scale = bench.scale.to_string();
        let seed = bench.seed.to_string();
        eprintln!("generating scale {scale} ...");
        run(&["demo", "generate", "--scale", &scale, "--seed", &seed])?;
        vec!["+marts.campaign_performance"]
    } else {
        MARTS.to_vec()
    };
    eprintln!("building the attribution marts ...");
    let mut pipeline = cdphub(&[&["run", "--select"][..], &selection[..]].concat());
    pipeline.stdout(Stdio::null());
    let (pipeline_seconds, pipeline_samples) = measured(pipeline)?;
    let mut marts = Vec::new();
    let names = MARTS.map(|m| format!("'{m}'")).join(", ");
    let json = run(&[
        "query",
        "--format",
        "json",
        &format!(
            "SELECT model, duration_ms, rows_written FROM hub.model_runs WHERE model IN ({names}) \
             AND run_id = (SELECT run_id FROM hub.runs ORDER BY started_at DESC LIMIT 1)"
        ),
    ])?;
    for line in json.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        marts.push(MartReport {
            model: row["model"].as_str().unwrap_or_default().to_string(),
            seconds: row["duration_ms"].as_i64().unwrap_or_default() as f64 / 1000.0,
            rows: row["rows_written"].as_i64().unwrap_or_default(),
        });
    }
    marts.sort_by_key(|m| MARTS.iter().position(|name| *name == m.model));

    let journeys = work.path().join("journeys.parquet");
    run(&[
        "query",
        "--format",
        "parquet",
        "--output",
        journeys.to_str().context("utf-8 temp path")?,
        "SELECT journey_id, converted, revenue, converted_at, channels, touched_at FROM marts.journeys",
    ])?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ours = runtime.block_on(run_cdphub(&journeys, bench.repeat))?;
    let cdphub_peak = own_peak_rss_mib();

    eprintln!("DuckDB: the rule models");
    let defaults = AttributionSettings::default();
    let weights = defaults.position_weights;
    let result = work.path().join("peer.json");
    let mut command = Command::new(&bench.python);
    command
        .arg(
            bench
                .project
                .join("benches/peers/attribution_heuristics.py"),
        )
        .arg(&journeys)
        .arg(bench.repeat.to_string())
        .arg(defaults.half_life_days.to_string())
        .arg(weights.first.to_string())
        .arg(weights.middle.to_string())
        .arg(weights.last.to_string())
        .arg(&defaults.direct_channel)
        .stdout(std::fs::File::create(&result)?);
    let (_, samples) = measured(command)?;
    let peer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&result)?)?;

    let mut models = Vec::new();
    let mut worst: f64 = 0.0;
    for model in RULES.iter().chain(&FITTED) {
        let seconds = ours.seconds[*model].clone();
        let cdphub_median = median(&seconds);
        let peer_model = &peer["models"][*model];
        let duckdb_seconds: Vec<f64> = peer_model["seconds"]
            .as_array()
            .map(|values| values.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default();
        if let Some(channels) = peer_model["channels"].as_object() {
            let mine = &ours.totals[*model];
            if channels.len() != mine.len() {
                bail!(
                    "{model}: DuckDB credits {} channels, cdphub {}",
                    channels.len(),
                    mine.len()
                );
            }
            for (channel, values) in channels {
                let (conversions, revenue) = mine
                    .get(channel)
                    .with_context(|| format!("{model}: cdphub has no {channel}"))?;
                let theirs = [values[0].as_f64(), values[1].as_f64()];
                for (ours, theirs) in [*conversions, *revenue].into_iter().zip(theirs) {
                    let theirs = theirs.context("peer totals")?;
                    let relative = (ours - theirs).abs() / theirs.abs().max(1.0);
                    worst = worst.max(relative);
                }
            }
        }
        let duckdb_median = (!duckdb_seconds.is_empty()).then(|| median(&duckdb_seconds));
        models.push(ModelReport {
            model: model.to_string(),
            cdphub_seconds_median: cdphub_median,
            cdphub_seconds: seconds,
            cdphub_fit_seconds_median: ours.fit_seconds.get(*model).map(|s| median(s)),
            duckdb_seconds_median: duckdb_median,
            duckdb_seconds,
            ratio: duckdb_median.map(|theirs| cdphub_median / theirs),
        });
    }
    if worst > 1e-6 {
        bail!("cdphub and DuckDB disagree on the channel totals (relative difference {worst:e})");
    }

    let report = AttributionReport {
        benchmark: "attribution",
        scale: bench.scale,
        seed: bench.seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        journeys: ours.journeys,
        converted_journeys: ours.converted,
        touchpoints_in_converted_journeys: ours.touchpoints,
        pipeline_selection: selection.join(" "),
        pipeline_seconds,
        pipeline_peak_rss_mib: peak(&pipeline_samples),
        marts,
        models,
        cdphub_peak_rss_mib: cdphub_peak,
        duckdb_peak_rss_mib: peak(&samples),
        duckdb_version: peer["duckdb_version"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        duckdb_threads: peer["threads"].to_string(),
        max_relative_difference: worst,
    };
    print_report(&report);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", out.display());
    Ok(())
}

fn print_report(report: &AttributionReport) {
    println!(
        "attribution at scale {} (seed {}, {} cores): {} journeys, {} converted, {} touchpoints credited",
        report.scale,
        report.seed,
        report.cores,
        report.journeys,
        report.converted_journeys,
        report.touchpoints_in_converted_journeys
    );
    println!(
        "  run --select {}: {:.1} s, peak RSS {:.0} MiB",
        report.pipeline_selection, report.pipeline_seconds, report.pipeline_peak_rss_mib
    );
    for mart in &report.marts {
        println!(
            "    {:<28} {:>7.2} s {:>10} rows",
            mart.model, mart.seconds, mart.rows
        );
    }
    println!(
        "  {:<16} {:>11} {:>11} {:>11} {:>8}",
        "model", "cdphub s", "(fit s)", "DuckDB s", "ratio"
    );
    for model in &report.models {
        let optional = |value: Option<f64>, width: usize| {
            value.map_or_else(|| format!("{:>width$}", "-"), |v| format!("{v:>width$.3}"))
        };
        println!(
            "  {:<16} {:>11.3} {} {} {}",
            model.model,
            model.cdphub_seconds_median,
            optional(model.cdphub_fit_seconds_median, 11),
            optional(model.duckdb_seconds_median, 11),
            optional(model.ratio, 8),
        );
    }
    println!(
        "  peak RSS: cdphub {:.0} MiB, DuckDB {:.0} MiB ({} {} threads); channel totals agree to {:.1e}",
        report.cdphub_peak_rss_mib,
        report.duckdb_peak_rss_mib,
        report.duckdb_version,
        report.duckdb_threads,
        report.max_relative_difference
    );
}
