//! `cdphub-bench flight`: the Flight SQL server under load.
//!
//! - streaming: a wide, multi-million-row table to a pyarrow.flight client on loopback (GB/s,
//!   rows/s, time to first batch), against pyarrow reading the same Parquet files in the same run
//!   (`benches/flight_stream.py`);
//! - dashboards: 32 concurrent analyst clients (one connection each) running a mix of dashboard queries
//!   for 60 s; p50/p99 latency per query kind and overall, and the error count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

/// The demo users of the example config (documented in the README): the admin bulk-loads
/// and streams the wide table; dashboards connect as analysts, under PII masking.
const USER: &str = "admin";
const PASSWORD: &str = "cdphub-admin-demo";
const DASHBOARD_USER: &str = "analyst";
const DASHBOARD_PASSWORD: &str = "cdphub-analyst-demo";

pub struct FlightOptions {
    pub scale: f64,
    pub seed: u64,
    pub cdphub: PathBuf,
    pub project: PathBuf,
    pub out: PathBuf,
    pub rows: u64,
    pub clients: usize,
    pub seconds: u64,
    pub lake: Option<PathBuf>,
}

#[derive(Serialize)]
struct FlightReport {
    benchmark: &'static str,
    scale: f64,
    cores: usize,
    unix_time: u64,
    streaming: serde_json::Value,
    dashboards: DashboardReport,
}

#[derive(Serialize)]
struct DashboardReport {
    clients: usize,
    seconds: f64,
    queries: usize,
    errors: usize,
    first_errors: Vec<String>,
    queries_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    point_lookup_table: String,
    by_kind: BTreeMap<String, KindReport>,
}

#[derive(Serialize)]
struct KindReport {
    queries: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

struct ServerProcess {
    child: Child,
    url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(options: FlightOptions) -> Result<()> {
    let fresh_lake = tempfile::tempdir().context("temp dir for the benchmark lake")?;
    let lake_dir = match &options.lake {
        Some(lake) => std::path::absolute(lake)?,
        None => fresh_lake.path().to_path_buf(),
    };
    let cdphub = |args: &[&str]| -> Result<()> {
        let status = Command::new(&options.cdphub)
            .arg("--project")
            .arg(&options.project)
            .arg("--lake")
            .arg(&lake_dir)
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("cdphub {args:?} failed with {status}");
        }
        Ok(())
    };
    let scale = options.scale.to_string();
    let seed = options.seed.to_string();
    if options.lake.is_none() {
        println!("generating demo data at scale {scale} and running the models...");
        cdphub(&["demo", "generate", "--scale", &scale, "--seed", &seed])?;
        cdphub(&["run"])?;
    }

    let server = start_server(&options, &lake_dir, &fresh_lake.path().join("serve.log"))?;
    println!("server at {}", server.url);

    println!("streaming benchmark ({} rows)...", options.rows);
    let python = options.project.join(".venv/bin/python");
    let output = Command::new(&python)
        .arg(options.project.join("benches/flight_stream.py"))
        .args(["--uri", &server.url, "--user", USER, "--password", PASSWORD])
        .arg("--lake")
        .arg(&lake_dir)
        .args(["--rows", &options.rows.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| {
            format!(
                "running {} (scripts/s3-server.sh install creates it)",
                python.display()
            )
        })?;
    if !output.status.success() {
        bail!("flight_stream.py failed with {}", output.status);
    }
    let streaming: serde_json::Value = serde_json::from_slice(&output.stdout)?;

    println!(
        "dashboard benchmark: {} clients for {} s...",
        options.clients, options.seconds
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dashboards = runtime.block_on(dashboards(&server.url, options.clients, options.seconds))?;

    let report = FlightReport {
        benchmark: "flight",
        scale: options.scale,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        unix_time: SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
        streaming,
        dashboards,
    };
    print_report(&report);
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.out, serde_json::to_string_pretty(&report)?)?;
    println!("\nwritten to {}", options.out.display());
    drop(server);
    Ok(())
}

fn start_server(options: &FlightOptions, lake: &Path, log: &Path) -> Result<ServerProcess> {
    let child = Command::new(&options.cdphub)
        .arg("--project")
        .arg(&options.project)
        .arg("--lake")
        .arg(lake)
        .args(["serve", "--port", "0"])
        .stdout(std::fs::File::create(log)?)
        .stderr(Stdio::inherit())
        .spawn()
        .context("start cdphub serve")?;
    let mut server = ServerProcess {
        child,
        url: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(at) = text.find("listening on grpc://") {
            let rest = &text[at + "listening on ".len()..];
            server.url = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            return Ok(server);
        }
        if Instant::now() > deadline || server.child.try_wait()?.is_some() {
            bail!("cdphub serve did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn connect(url: &str) -> Result<FlightSqlServiceClient<Channel>> {
    let channel = Endpoint::from_shared(url.replace("grpc://", "http://"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake(DASHBOARD_USER, DASHBOARD_PASSWORD).await?;
    Ok(client)
}

async fn run_query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Result<usize> {
    let info = client.execute(sql.to_string(), None).await?;
    let mut rows = 0;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.context("endpoint without ticket")?;
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            rows += batch.num_rows();
        }
    }
    Ok(rows)
}

/// The queries a retail dashboard sends: point lookups of one customer, and aggregates.
async fn dashboards(url: &str, clients: usize, seconds: u64) -> Result<DashboardReport> {
    let mut setup = connect(url).await?;
    // Point lookups on the golden record when it is published; until identity resolution
    // lands, on the orders (one row per key as well).
    let (table, key) = if run_query(&mut setup, "SELECT 1 FROM marts.customer_profiles LIMIT 1")
        .await
        .is_ok()
    {
        ("marts.customer_profiles", "unified_id")
    } else {
        ("staging.orders", "order_id")
    };
    let keys_sql = format!("SELECT CAST({key} AS VARCHAR) AS k FROM {table} LIMIT 2000");
    let info = setup.execute(keys_sql, None).await?;
    let mut keys = Vec::new();
    for endpoint in info.endpoint {
        let mut stream = setup.do_get(endpoint.ticket.context("ticket")?).await?;
        while let Some(batch) = stream.try_next().await? {
            let column = arrow::array::cast::as_string_array(batch.column(0));
            keys.extend(column.iter().flatten().map(str::to_string));
        }
    }
    if keys.is_empty() {
        bail!("{table} is empty");
    }
    let keys = Arc::new(keys);
    let aggregates: Arc<Vec<(&str, String)>> = Arc::new(vec![
        (
            "revenue_by_channel",
            "SELECT channel, sum(revenue) AS revenue, sum(orders) AS orders FROM marts.daily_revenue GROUP BY channel ORDER BY revenue DESC".into(),
        ),
        (
            "revenue_last_30_days",
            "SELECT day, sum(revenue) AS revenue FROM marts.daily_revenue WHERE day > (SELECT max(day) FROM marts.daily_revenue) - INTERVAL '30 days' GROUP BY day ORDER BY day".into(),
        ),
        (
            "top_campaigns",
            "SELECT campaign_id, sum(spend) AS spend, sum(clicks) AS clicks FROM staging.ad_spend GROUP BY campaign_id ORDER BY spend DESC LIMIT 10".into(),
        ),
        (
            "orders_by_status",
            "SELECT status, channel, count(*) AS n FROM staging.orders GROUP BY status, channel".into(),
        ),
    ]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_no in 0..clients {
        let url = url.to_string();
        let keys = keys.clone();
        let aggregates = aggregates.clone();
        let table = table.to_string();
        let key = key.to_string();
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<(String, f64)> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            let mut client = match connect(&url).await {
                Ok(c) => c,
                Err(e) => return (samples, vec![format!("connect: {e}")]),
            };
            let mut i = client_no * 7919;
            while Instant::now() < deadline {
                i += 1;
                let (kind, sql) = if i % 2 == 0 {
                    let k = &keys[(i * 2654435761) % keys.len()];
                    (
                        "point_lookup".to_string(),
                        format!("SELECT * FROM {table} WHERE {key} = '{k}'"),
                    )
                } else {
                    let (kind, sql) = &aggregates[(i / 2) % aggregates.len()];
                    (kind.to_string(), sql.clone())
                };
                let t0 = Instant::now();
                match run_query(&mut client, &sql).await {
                    Ok(rows) if kind == "point_lookup" && rows == 0 => {
                        errors.push(format!("point lookup found no row: {sql}"))
                    }
                    Ok(_) => samples.push((kind, t0.elapsed().as_secs_f64() * 1000.0)),
                    Err(e) => errors.push(format!("{kind}: {e}")),
                }
            }
            (samples, errors)
        }));
    }
    let mut all: Vec<(String, f64)> = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (samples, errs) = task.await?;
        all.extend(samples);
        errors.extend(errs);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut by_kind: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (kind, ms) in &all {
        by_kind.entry(kind.clone()).or_default().push(*ms);
    }
    let mut overall: Vec<f64> = all.iter().map(|(_, ms)| *ms).collect();
    Ok(DashboardReport {
        clients,
        seconds: elapsed,
        queries: all.len(),
        errors: errors.len(),
        first_errors: errors.iter().take(5).cloned().collect(),
        queries_per_s: all.len() as f64 / elapsed,
        p50_ms: percentile(&mut overall, 0.50),
        p99_ms: percentile(&mut overall, 0.99),
        point_lookup_table: table.to_string(),
        by_kind: by_kind
            .into_iter()
            .map(|(kind, mut values)| {
                let report = KindReport {
                    queries: values.len(),
                    p50_ms: percentile(&mut values, 0.50),
                    p99_ms: percentile(&mut values, 0.99),
                    max_ms: values.iter().cloned().fold(0.0, f64::max),
                };
                (kind, report)
            })
            .collect(),
    })
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index]
}

fn print_report(report: &FlightReport) {
    let s = &report.streaming;
    println!(
        "\nflight benchmark at scale {} ({} cores)",
        report.scale, report.cores
    );
    println!(
        "  streaming {} rows x {} columns ({:.2} GB of Arrow data):",
        s["rows"],
        s["columns"],
        s["arrow_bytes"].as_f64().unwrap_or(0.0) / 1e9
    );
    println!(
        "    Flight SQL -> pyarrow: {:.2} GB/s, {:.1} M rows/s, first batch after {:.1} ms",
        s["flight"]["gb_per_s"].as_f64().unwrap_or(0.0),
        s["flight"]["rows_per_s"].as_f64().unwrap_or(0.0) / 1e6,
        s["flight"]["median_first_batch_seconds"]
            .as_f64()
            .unwrap_or(0.0)
            * 1000.0
    );
    println!(
        "    pyarrow local Parquet: {:.2} GB/s, {:.1} M rows/s",
        s["parquet"]["gb_per_s"].as_f64().unwrap_or(0.0),
        s["parquet"]["rows_per_s"].as_f64().unwrap_or(0.0) / 1e6
    );
    println!(
        "    ratio Flight / Parquet: {:.2}; ingest {:.2} M rows/s",
        s["flight_vs_parquet"].as_f64().unwrap_or(0.0),
        s["ingest_rows_per_s"].as_f64().unwrap_or(0.0) / 1e6
    );
    let d = &report.dashboards;
    println!(
        "  dashboards: {} clients, {:.0} s, {} queries ({:.0}/s), {} errors; p50 {:.1} ms, p99 {:.1} ms",
        d.clients, d.seconds, d.queries, d.queries_per_s, d.errors, d.p50_ms, d.p99_ms
    );
    for (kind, k) in &d.by_kind {
        println!(
            "    {kind:<22} {:>7} queries  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            k.queries, k.p50_ms, k.p99_ms, k.max_ms
        );
    }
    println!("    (point lookups on {})", d.point_lookup_table);
    for e in &d.first_errors {
        println!("    error: {e}");
    }
}
