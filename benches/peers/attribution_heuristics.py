"""The rule-based attribution models as SQL on DuckDB, the way an analyst would write them:
unnest each converted journey into its touchpoints, give each touchpoint its credit with
window functions, sum the credits per channel.

Usage: attribution_heuristics.py <journeys.parquet> <repeat> <half_life_days> <first> <middle> <last> <direct_channel>
(columns journey_id, converted, revenue, converted_at, channels, touched_at)
Prints one JSON object: per model the seconds of each repetition and the channel totals
(conversions, revenue) of the last one, with DuckDB's version and threads.
"""

import json
import sys
import time

import duckdb

STEPS = """
    SELECT journey_id, revenue, len(channels) AS n,
           unnest(channels) AS channel,
           unnest(touched_at) AS touched_at,
           unnest(range(1, len(channels) + 1)) AS step,
           converted_at
    FROM journeys
    WHERE converted
"""


def credit_sql(model, half_life_days, first, middle, last, direct):
    if model == "first_touch":
        credit = "CASE WHEN step = 1 THEN 1.0 ELSE 0.0 END"
    elif model == "last_touch":
        credit = "CASE WHEN step = n THEN 1.0 ELSE 0.0 END"
    elif model == "linear":
        credit = "1.0 / n"
    elif model == "last_non_direct":
        credit = (
            f"CASE WHEN step = coalesce(max(CASE WHEN channel <> '{direct}' THEN step END) "
            "OVER (PARTITION BY journey_id), n) THEN 1.0 ELSE 0.0 END"
        )
    elif model == "position_based":
        credit = (
            f"CASE WHEN n = 1 THEN 1.0 "
            f"WHEN n = 2 THEN (CASE WHEN step = 1 THEN {first} ELSE {last} END) / ({first} + {last}) "
            f"WHEN step = 1 THEN {first} WHEN step = n THEN {last} "
            f"ELSE {middle} / (n - 2) END"
        )
    elif model == "time_decay":
        # 2^(-age / half-life), age from the touchpoint to the conversion (0 if after it),
        # then normalised per journey.
        weight = (
            "pow(2.0, -greatest(epoch_us(converted_at) - epoch_us(touched_at), 0) "
            f"/ ({half_life_days} * 86400e6))"
        )
        credit = f"{weight} / sum({weight}) OVER (PARTITION BY journey_id)"
    else:
        raise ValueError(model)
    return f"""
        WITH steps AS ({STEPS}),
        credited AS (SELECT channel, revenue, CAST({credit} AS DOUBLE) AS credit FROM steps)
        SELECT channel, sum(credit) AS conversions, sum(credit * revenue) AS revenue
        FROM credited GROUP BY channel
    """


MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based"]


def main(path, repeat, half_life_days, first, middle, last, direct):
    con = duckdb.connect()
    # The journeys in memory, as cdphub's side holds them, so both time the attribution.
    load_started = time.perf_counter()
    con.execute("CREATE TABLE journeys AS SELECT * FROM read_parquet(?)", [path])
    load_seconds = time.perf_counter() - load_started
    report = {
        "duckdb_version": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "load_seconds": load_seconds,
        "models": {},
    }
    for model in MODELS:
        sql = credit_sql(model, half_life_days, first, middle, last, direct)
        seconds = []
        rows = []
        for _ in range(repeat):
            started = time.perf_counter()
            rows = con.execute(sql).fetchall()
            seconds.append(time.perf_counter() - started)
        report["models"][model] = {
            "seconds": seconds,
            "channels": {channel: [conversions, revenue] for channel, conversions, revenue in rows},
        }
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    main(
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
        float(sys.argv[6]),
        sys.argv[7],
    )
