"""The customer marts of sql/marts/ on DuckDB, over the same staged inputs as cdphub, for
`cdphub-bench marts`.

Usage: marts.py <inputs dir> <sql dir> <output dir> <model> [<model> ...]

<inputs dir> holds one Parquet file per input table, named <schema>.<table>.parquet
(staging.orders, identity.record_links, marts.customer_profiles, ...); each becomes a view
of that name. Each model (schema.table, in dependency order) is then built from its file
sql/<schema>/[...]/<table>.sql with `CREATE TABLE ... AS <the model's SQL>` and written to
<output dir>/<schema>.<table>.parquet, as cdphub publishes it.

The SQL is the model file's text with one substitution: `analysis_date()` (a cdphub function
returning [analytics] as-of) becomes `CAST(NULL AS DATE)`, the value it has without as-of.
The session time zone is UTC, so timestamps fall on the same days as in cdphub.

Prints one JSON object: seconds (total), per-model seconds and rows, threads.
"""

import json
import pathlib
import sys
import time

import duckdb

SUBSTITUTIONS = [("analysis_date()", "CAST(NULL AS DATE)")]


def model_file(sql_dir: pathlib.Path, name: str) -> pathlib.Path:
    schema, table = name.split(".")
    matches = sorted((sql_dir / schema).rglob(f"{table}.sql"))
    if len(matches) != 1:
        sys.exit(f"expected one file for {name} under {sql_dir / schema}, found {matches}")
    return matches[0]


def main(inputs: str, sql_dir: str, out_dir: str, models: list[str]) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    for schema in ("staging", "identity", "marts"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for path in sorted(pathlib.Path(inputs).glob("*.parquet")):
        name = path.name.removesuffix(".parquet")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    timings = []
    for name in models:
        sql = model_file(pathlib.Path(sql_dir), name).read_text()
        for old, new in SUBSTITUTIONS:
            sql = sql.replace(old, new)
        model_started = time.perf_counter()
        con.execute(f"CREATE TABLE {name} AS {sql}")
        target = pathlib.Path(out_dir) / f"{name}.parquet"
        con.execute(f"COPY {name} TO '{target}' (FORMAT PARQUET)")
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        timings.append(
            {"model": name, "seconds": time.perf_counter() - model_started, "rows": rows}
        )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "models": timings,
                "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
