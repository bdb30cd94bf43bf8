"""Real clients against `cdphub serve`: ADBC, pyarrow.flight, SQLAlchemy (flightsql-dbapi), pandas."""

from __future__ import annotations

import time
import uuid

import adbc_driver_flightsql.dbapi as adbc_flightsql
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
import sqlalchemy

from conftest import ADMIN, ANALYST
from flightsql_wire import authenticated, query, query_info


def connect(server, user=ADMIN):
    return adbc_flightsql.connect(
        server.uri, db_kwargs={"username": user[0], "password": user[1]}, autocommit=True
    )


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def lake_raw(project, source) -> pa.Table:
    return pq.read_table(project / "data" / "lake" / "raw" / source)


# ---------------------------------------------------------------- ADBC ---


def test_adbc_connects_with_user_and_password_and_queries(server, project):
    with connect(server) as conn:
        assert scalar(conn, "SELECT 40 + 2") == 42
        expected = lake_raw(project, "orders").num_rows
        assert expected > 100
        assert scalar(conn, "SELECT count(*) FROM raw.orders") == expected
        with conn.cursor() as cur:
            cur.execute(
                "SELECT channel, count(*) AS n FROM staging.orders GROUP BY channel ORDER BY channel"
            )
            table = cur.fetch_arrow_table()
        assert table.column_names == ["channel", "n"]
        assert sum(table.column("n").to_pylist()) == expected
        assert set(table.column("channel").to_pylist()) <= {"store", "web", "app"}


def test_adbc_parameterised_queries(server):
    with connect(server) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT ? + 1 AS answer, upper(?) AS shout", (41, "cdp"))
            assert cur.fetchall() == [(42, "CDP")]
        with conn.cursor() as cur:
            cur.execute("SELECT channel, count(*) FROM staging.orders GROUP BY channel")
            counts = dict(cur.fetchall())
        for channel, n in counts.items():
            assert (
                scalar(conn, "SELECT count(*) FROM staging.orders WHERE channel = ?", (channel,))
                == n
            )
        # A prepared statement re-executed with other values.
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM staging.orders WHERE channel = $1", ("web",))
            web = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM staging.orders WHERE channel = $1", ("store",))
            store = cur.fetchone()[0]
        assert (web, store) == (counts.get("web", 0), counts.get("store", 0))


def test_adbc_get_objects_lists_catalogs_schemas_tables_columns(server):
    with connect(server) as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["cdphub"]
    schemas = {s["db_schema_name"]: s for s in objects[0]["catalog_db_schemas"]}
    assert {"raw", "staging", "marts", "hub", "information_schema"} <= set(schemas)
    tables = {t["table_name"]: t for t in schemas["staging"]["db_schema_tables"]}
    assert {"orders", "identities", "consents"} <= set(tables)
    assert tables["orders"]["table_type"] == "TABLE"
    columns = [c["column_name"] for c in tables["orders"]["table_columns"]]
    assert columns[:4] == ["order_id", "source", "record_id", "ordered_at"]
    assert "revenue" in columns


def test_adbc_get_objects_follows_the_role(server):
    with connect(server, ANALYST) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    schemas = {s["db_schema_name"] for s in objects[0]["catalog_db_schemas"]}
    assert "staging" in schemas and "marts" in schemas
    assert "raw" not in schemas and "hub" not in schemas


def test_adbc_get_table_schema(server):
    with connect(server) as conn:
        schema = conn.adbc_get_table_schema("orders", db_schema_filter="staging")
    assert schema.field("order_id").type == pa.string()
    assert pa.types.is_timestamp(schema.field("ordered_at").type)
    assert "revenue" in schema.names


def test_adbc_ingest_create_append_replace_then_query(server, project):
    name = f"ingested_{uuid.uuid4().hex[:8]}"
    first = pa.table({"id": [1, 2, 3], "email": ["a@x.fr", "b@x.fr", None], "amount": [1.5, 2.5, 3.0]})
    more = pa.table({"id": [4, 5], "email": ["d@x.fr", "e@x.fr"], "amount": [4.0, 5.0]})
    with connect(server) as conn:
        with conn.cursor() as cur:
            assert cur.adbc_ingest(name, first, mode="create") == 3
        assert scalar(conn, f"SELECT count(*) FROM raw.{name}") == 3
        with conn.cursor() as cur:
            assert cur.adbc_ingest(name, more, mode="append") == 2
        assert scalar(conn, f"SELECT sum(amount) FROM raw.{name}") == 16.0
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, email FROM raw.{name} ORDER BY id")
            assert cur.fetchall()[-2:] == [(4, "d@x.fr"), (5, "e@x.fr")]
        # create again: the table exists
        with pytest.raises(Exception, match="already exists"):
            with conn.cursor() as cur:
                cur.adbc_ingest(name, more, mode="create")
        # a type that does not match the table
        bad = pa.table({"id": ["x"], "email": ["z@x.fr"], "amount": [1.0]})
        with pytest.raises(Exception, match="raw.%s.id" % name):
            with conn.cursor() as cur:
                cur.adbc_ingest(name, bad, mode="append")
        with conn.cursor() as cur:
            assert cur.adbc_ingest(name, more, mode="replace") == 2
        assert scalar(conn, f"SELECT count(*) FROM raw.{name}") == 2
    # It is plain Parquet in the lake.
    files = list((project / "data" / "lake" / "raw" / name).glob("*.parquet"))
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == 2


def test_ingest_needs_the_privilege_and_only_writes_raw(server):
    table = pa.table({"id": [1]})
    with connect(server, ANALYST) as conn:
        with pytest.raises(Exception, match="(?i)permission denied"):
            with conn.cursor() as cur:
                cur.adbc_ingest("not_allowed", table, mode="create")
    with connect(server) as conn:
        with pytest.raises(Exception, match="raw.<table> only"):
            with conn.cursor() as cur:
                cur.adbc_ingest("x", table, mode="create", db_schema_name="marts")


# -------------------------------------------------------- pyarrow.flight ---


def test_pyarrow_streams_a_multi_million_row_result(server):
    client, options = authenticated(server.uri, *ADMIN)
    rows = 3_000_000
    info = query_info(
        client,
        options,
        f"SELECT value, value * 2 AS doubled, CAST(value AS VARCHAR) AS label "
        f"FROM generate_series(1, {rows}) ORDER BY value",
    )
    reader = client.do_get(info.endpoints[0].ticket, options)
    seen = total = batches = 0
    last = None
    for chunk in reader:
        batch = chunk.data
        batches += 1
        seen += batch.num_rows
        total += pc.sum(batch.column("doubled")).as_py()
        last = batch.column("label")[-1].as_py()
    assert seen == rows
    assert total == rows * (rows + 1)
    assert last == str(rows)
    assert batches > 10, "results must stream in many batches, not one"


def test_pyarrow_sort_that_exceeds_memory_spills_and_succeeds(server):
    # 6M rows sorted with a 64 MiB per-query limit: the sort spills to disk.
    client, options = authenticated(server.uri, *ADMIN)
    table = query(
        client,
        options,
        "SELECT value FROM generate_series(1, 6000000) ORDER BY value DESC",
    )
    assert table.num_rows == 6_000_000
    assert table.column("value")[0].as_py() == 6_000_000
    assert table.column("value")[5_999_999].as_py() == 1


# ------------------------------------------------- SQLAlchemy and pandas ---


def sqlalchemy_engine(server, user=ADMIN):
    host = server.uri.split("://")[1]
    # flightsql-dbapi registers its dialect under the `datafusion` entry point.
    return sqlalchemy.create_engine(f"datafusion://{user[0]}:{user[1]}@{host}?insecure=True")


def test_sqlalchemy_inspector_lists_schemas_tables_columns(server):
    engine = sqlalchemy_engine(server)
    inspector = sqlalchemy.inspect(engine)
    schemas = inspector.get_schema_names()
    assert {"raw", "staging", "marts", "hub"} <= set(schemas)
    assert {"orders", "identities"} <= set(inspector.get_table_names(schema="staging"))
    columns = {c["name"]: c for c in inspector.get_columns("orders", schema="staging")}
    assert {"order_id", "revenue", "channel"} <= set(columns)
    engine.dispose()


def test_pandas_read_sql(server, project):
    engine = sqlalchemy_engine(server)
    conn = engine.raw_connection()
    try:
        df = pd.read_sql(
            "SELECT channel, count(*) AS orders FROM staging.orders GROUP BY channel ORDER BY channel",
            con=conn,
        )
    finally:
        conn.close()
        engine.dispose()
    assert list(df.columns) == ["channel", "orders"]
    assert int(df["orders"].sum()) == lake_raw(project, "orders").num_rows
    # And through ADBC's DBAPI connection.
    with connect(server) as adbc_conn:
        df2 = pd.read_sql(
            "SELECT channel, count(*) AS orders FROM staging.orders GROUP BY channel ORDER BY channel",
            con=adbc_conn,
        )
    assert df2["orders"].tolist() == df["orders"].tolist()


# ------------------------------------------------------------------- TLS ---


def test_tls_connection(tls_server):
    assert tls_server.uri.startswith("grpc+tls://")
    conn = adbc_flightsql.connect(
        tls_server.uri,
        db_kwargs={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "adbc.flight.sql.client_option.tls_root_certs": tls_server.cert_pem,
        },
        autocommit=True,
    )
    with conn:
        assert scalar(conn, "SELECT 1") == 1
    # Plain gRPC to a TLS port fails.
    with pytest.raises(flight.FlightError):
        client = flight.FlightClient(tls_server.uri.replace("grpc+tls", "grpc"))
        client.authenticate_basic_token(ADMIN[0].encode(), ADMIN[1].encode())


def resident_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_server_memory_does_not_grow_with_the_result(server):
    """640 MB of Arrow data streamed; the server holds only a few batches at a time."""
    import threading

    client, options = authenticated(server.uri, *ADMIN)
    pid = server.process.pid
    baseline = resident_mib(pid)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_mib(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    rows = 20_000_000
    info = query_info(
        client,
        options,
        f"SELECT value, value * 2 AS b, value * 3 AS c, value * 4 AS d FROM generate_series(1, {rows})",
    )
    seen = nbytes = 0
    for chunk in client.do_get(info.endpoints[0].ticket, options):
        seen += chunk.data.num_rows
        nbytes += chunk.data.nbytes
    done.set()
    sampler.join()
    assert seen == rows
    assert nbytes >= 600_000_000
    assert peak[0] - baseline < 250, f"server RSS grew by {peak[0] - baseline:.0f} MiB"
