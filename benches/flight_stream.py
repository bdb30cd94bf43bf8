"""Streaming throughput of `cdphub serve` to a pyarrow.flight client, against pyarrow reading the
same data from local Parquet in the same run. Driven by `cdphub-bench flight`; prints JSON.

1. builds a wide table (default 5,000,000 rows x 24 columns) in memory with pyarrow,
2. bulk-ingests it over Flight SQL (ADBC adbc_ingest) into raw.bench_wide,
3. streams `SELECT * FROM raw.bench_wide` with pyarrow.flight (time to first batch, total),
4. reads raw/bench_wide/*.parquet with pyarrow.parquet (the same bytes on the same disk).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc_flightsql
import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "crates/flight/tests/python"))
from flightsql_wire import authenticated, query_info  # noqa: E402


def wide_table(rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for i in range(8):
        columns[f"i{i}"] = pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int64))
    for i in range(8):
        columns[f"f{i}"] = pa.array(rng.random(rows))
    base = np.datetime64("2024-01-01T00:00:00", "us")
    for i in range(2):
        offsets = rng.integers(0, 365 * 24 * 3600 * 1_000_000, rows)
        columns[f"ts{i}"] = pa.array(base + offsets.astype("timedelta64[us]"), pa.timestamp("us", "UTC"))
    labels = np.array([f"segment-{k:03d}" for k in range(200)], dtype=object)
    for i in range(4):
        columns[f"s{i}"] = pa.array(labels[rng.integers(0, len(labels), rows)], pa.string())
    columns["flag"] = pa.array(rng.random(rows) < 0.5)
    return pa.table(columns)


def stream_once(uri: str, user: str, password: str, sql: str) -> dict:
    client, options = authenticated(uri, user, password)
    started = time.perf_counter()
    info = query_info(client, options, sql)
    reader = client.do_get(info.endpoints[0].ticket, options)
    first = None
    rows = nbytes = batches = 0
    for chunk in reader:
        if first is None:
            first = time.perf_counter() - started
        rows += chunk.data.num_rows
        nbytes += chunk.data.nbytes
        batches += 1
    seconds = time.perf_counter() - started
    client.close()
    return {"seconds": seconds, "first_batch_seconds": first, "rows": rows, "bytes": nbytes, "batches": batches}


def parquet_once(folder: Path) -> dict:
    started = time.perf_counter()
    table = pq.read_table(folder)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": table.num_rows, "bytes": table.nbytes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--lake", required=True, help="lake directory (to read the Parquet directly)")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    table = wide_table(args.rows)
    conn = adbc_flightsql.connect(args.uri, db_kwargs={"username": args.user, "password": args.password})
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.adbc_ingest("bench_wide", table.to_batches(max_chunksize=32_768), mode="replace")
    ingest_seconds = time.perf_counter() - started
    conn.close()

    sql = "SELECT * FROM raw.bench_wide"
    flight_runs = [stream_once(args.uri, args.user, args.password, sql) for _ in range(args.runs)]
    parquet_runs = [parquet_once(Path(args.lake) / "raw" / "bench_wide") for _ in range(args.runs)]
    for run in flight_runs:
        assert run["rows"] == args.rows, run
    for run in parquet_runs:
        assert run["rows"] == args.rows, run

    def rate(runs):
        seconds = statistics.median(r["seconds"] for r in runs)
        nbytes = runs[0]["bytes"]
        return {
            "median_seconds": seconds,
            "gb_per_s": nbytes / seconds / 1e9,
            "rows_per_s": args.rows / seconds,
            "arrow_bytes": nbytes,
        }

    report = {
        "rows": args.rows,
        "columns": table.num_columns,
        "arrow_bytes": table.nbytes,
        "ingest_seconds": ingest_seconds,
        "ingest_rows_per_s": args.rows / ingest_seconds,
        "flight": {
            **rate(flight_runs),
            "median_first_batch_seconds": statistics.median(r["first_batch_seconds"] for r in flight_runs),
            "batches": flight_runs[0]["batches"],
            "runs": flight_runs,
        },
        "parquet": {**rate(parquet_runs), "runs": parquet_runs},
    }
    report["flight_vs_parquet"] = report["flight"]["gb_per_s"] / report["parquet"]["gb_per_s"]
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
