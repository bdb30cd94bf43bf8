"""Negative cases: authentication, permissions, PII masking on every path, limits, cancel, audit."""

from __future__ import annotations

import signal
import threading
import time

import adbc_driver_flightsql.dbapi as adbc_flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ADMIN, ANALYST
from flightsql_wire import (
    authenticated,
    cancel_flight_info_request,
    query,
    query_info,
    statement_query,
)


def connect(server, user=ADMIN):
    return adbc_flightsql.connect(
        server.uri, db_kwargs={"username": user[0], "password": user[1]}, autocommit=True
    )


def rows(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def column(conn, sql, params=None):
    return [r[0] for r in rows(conn, sql, params)]


# ---------------------------------------------------------- authentication ---


def every_rpc(client, options):
    """One call of each Flight RPC; each must be refused without a valid token."""
    descriptor = flight.FlightDescriptor.for_command(statement_query("SELECT 1"))
    ticket = flight.Ticket(b"whatever")
    yield "ListFlights", lambda: list(client.list_flights(options=options))
    yield "GetFlightInfo", lambda: client.get_flight_info(descriptor, options)
    yield "GetSchema", lambda: client.get_schema(descriptor, options)
    yield "DoGet", lambda: client.do_get(ticket, options).read_all()
    yield "DoAction", lambda: list(client.do_action(flight.Action("CancelFlightInfo", b""), options))
    yield "ListActions", lambda: client.list_actions(options)

    def do_put():
        writer, _ = client.do_put(descriptor, pa.schema([("a", pa.int64())]), options)
        writer.write_table(pa.table({"a": [1]}))
        writer.close()

    yield "DoPut", do_put

    def do_exchange():
        writer, reader = client.do_exchange(descriptor, options)
        writer.close()
        reader.read_all()

    yield "DoExchange", do_exchange


@pytest.mark.parametrize("header", [None, b"Bearer not-a-token", b"Basic YWRtaW46eA=="])
def test_every_rpc_without_a_valid_token_is_unauthenticated(server, header):
    client = flight.FlightClient(server.uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", header)] if header else [])
    for name, call in every_rpc(client, options):
        # pyarrow raises FlightUnauthenticatedError, or a plain OSError when the refusal
        # arrives while reading a stream (DoGet); both carry the UNAUTHENTICATED status.
        with pytest.raises((flight.FlightUnauthenticatedError, OSError), match="(?i)unauthenticated"):
            call()
            pytest.fail(f"{name} succeeded without a token")


def test_wrong_password_is_rejected(server):
    client = flight.FlightClient(server.uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="wrong user name or password"):
        client.authenticate_basic_token(b"admin", b"not-the-password")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token(b"nobody", b"whatever-it-is")
    with pytest.raises(Exception, match="(?i)unauthenticated|wrong user name"):
        connect(server, ("analyst", "wrong-password")).cursor().execute("SELECT 1")


def test_expired_token_is_rejected(short_server):
    client, options = authenticated(short_server.uri, *ADMIN)
    assert query(client, options, "SELECT 1 AS one").column("one").to_pylist() == [1]
    time.sleep(2.5)
    with pytest.raises(flight.FlightUnauthenticatedError, match="expired"):
        query(client, options, "SELECT 1")


# ------------------------------------------------------------- permissions ---


def test_a_table_outside_the_role_is_permission_denied_naming_it(server):
    client, options = authenticated(server.uri, *ANALYST)
    for sql in [
        "SELECT * FROM raw.crm_customers",
        "SELECT count(*) FROM staging.orders o JOIN raw.orders r ON o.order_id = r.order_id",
        "WITH x AS (SELECT * FROM hub.model_runs) SELECT count(*) FROM x",
        "SELECT (SELECT count(*) FROM raw.consents)",
    ]:
        with pytest.raises(flight.FlightUnauthorizedError, match=r"raw\.|hub\.model_runs"):
            query(client, options, sql)
    with pytest.raises(Exception, match=r"raw\.crm_customers"):
        with connect(server, ANALYST) as conn:
            rows(conn, "SELECT * FROM raw.crm_customers")
    # information_schema shows only what the role may read.
    tables = query(client, options, "SELECT table_schema, table_name FROM information_schema.tables")
    schemas = set(tables.column("table_schema").to_pylist())
    assert "staging" in schemas and "raw" not in schemas and "hub" not in schemas


def test_writes_and_files_are_refused(server):
    client, options = authenticated(server.uri, *ADMIN)
    for sql in [
        "CREATE TABLE public.t AS SELECT 1",
        "INSERT INTO raw.orders SELECT * FROM raw.orders",
        "COPY (SELECT 1) TO '/tmp/cdphub-copy.parquet'",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'",
        "DROP TABLE marts.daily_revenue",
    ]:
        # INVALID_ARGUMENT arrives as ArrowInvalid in pyarrow.
        with pytest.raises((flight.FlightError, pa.ArrowInvalid), match="not allowed"):
            query(client, options, sql)
    # A path is not a table: NOT_FOUND (ArrowKeyError), never the file's contents.
    with pytest.raises(pa.ArrowKeyError, match="not found"):
        query(client, options, "SELECT * FROM '/etc/passwd'")


# ------------------------------------------------------------------ masking ---

EMAIL_IDS = "SELECT id_value FROM staging.identities WHERE id_type = 'email'"


def assert_masked(values):
    values = [v for v in values if v is not None]
    assert values, "expected some rows"
    for v in values:
        assert "@" not in str(v), v


def test_admin_sees_personal_data_in_clear(server):
    with connect(server, ADMIN) as conn:
        values = column(conn, EMAIL_IDS + " LIMIT 50")
    assert values and all("@" in v for v in values)


def test_masking_holds_on_every_query_path(server):
    with connect(server, ANALYST) as conn:
        direct = column(conn, EMAIL_IDS + " LIMIT 50")
        assert_masked(direct)
        assert all(v.startswith("pii:") and len(v) == 16 for v in direct)
        paths = {
            "join": "SELECT i.id_value FROM staging.identities i "
            "JOIN staging.consents c ON i.id_value = c.id_value AND i.id_type = c.id_type "
            "WHERE i.id_type = 'email' LIMIT 50",
            "cte": "WITH e AS (" + EMAIL_IDS + ") SELECT id_value FROM e LIMIT 50",
            "subquery": "SELECT v FROM (SELECT lower(id_value) AS v FROM staging.identities "
            "WHERE id_type = 'email') t LIMIT 50",
            "scalar subquery": "SELECT (SELECT max(id_value) FROM staging.identities WHERE id_type = 'email')",
            "union": EMAIL_IDS + " UNION ALL SELECT id_value FROM staging.consents LIMIT 50",
            "functions": "SELECT concat(upper(id_value), '|', reverse(id_value), '|', "
            "split_part(id_value, '@', 2), '|', substr(id_value, 1, 30)) FROM staging.identities "
            "WHERE id_type = 'email' LIMIT 50",
            "aggregate": "SELECT string_agg(id_value, ',') FROM (" + EMAIL_IDS + " LIMIT 20) t",
            "min": "SELECT min(id_value) FROM staging.identities",
            "cast": "SELECT CAST(id_value AS BYTEA) FROM staging.identities WHERE id_type = 'email' LIMIT 20",
        }
        for name, sql in paths.items():
            values = column(conn, sql)
            values = [bytes(v).decode() if isinstance(v, (bytes, bytearray)) else v for v in values]
            assert_masked(values)
        # Functions see the pseudonym, never the value.
        assert set(column(conn, "SELECT DISTINCT length(id_value) FROM staging.identities")) == {16}
        # Filters run on masked values: no e-mail address can be probed for.
        assert column(conn, "SELECT count(*) FROM staging.identities WHERE id_value LIKE '%@%'") == [0]
        # A temporary view of the session.
        rows(conn, "CREATE VIEW contacts AS SELECT id_value AS contact, id_type FROM staging.identities")
        assert_masked(column(conn, "SELECT contact FROM contacts WHERE id_type = 'email' LIMIT 50"))
        # Prepared statements with parameters.
        assert_masked(
            column(conn, "SELECT id_value FROM staging.identities WHERE id_type = ? LIMIT 50", ("email",))
        )
    with connect(server, ADMIN) as conn:
        assert column(conn, "SELECT count(*) FROM staging.identities WHERE id_value LIKE '%@%'")[0] > 0


def test_masking_in_information_schema_and_metadata(server):
    with connect(server, ANALYST) as conn:
        cols = rows(
            conn,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'staging' AND table_name = 'identities' ORDER BY ordinal_position",
        )
        assert ("id_value", "Utf8") in cols or any(c[0] == "id_value" for c in cols)
        # The views of other sessions are not visible, and raw is not listed.
        listed = column(conn, "SELECT DISTINCT table_schema FROM information_schema.columns")
        assert "raw" not in listed


# ------------------------------------------------------ limits and cancel ---


def test_query_over_its_memory_limit_fails_cleanly_while_others_are_served(server):
    client, options = authenticated(server.uri, *ADMIN)
    errors = []

    def hog():
        try:
            query(client, options, "SELECT array_agg(value) FROM generate_series(1, 50000000)")
        # RESOURCE_EXHAUSTED arrives as ArrowInvalid when it ends a stream.
        except (flight.FlightError, pa.ArrowInvalid) as e:  # noqa: PERF203
            errors.append(e)

    thread = threading.Thread(target=hog)
    thread.start()
    other, other_options = authenticated(server.uri, *ANALYST)
    for _ in range(5):
        assert query(other, other_options, "SELECT count(*) AS n FROM staging.orders").column("n")[0].as_py() > 0
    thread.join(timeout=120)
    assert len(errors) == 1
    assert "per-query limit of 64MiB" in str(errors[0]), errors[0]
    assert "resource exhausted" in str(errors[0]).lower() or "RESOURCE_EXHAUSTED" in str(errors[0])
    # The server still serves the same client afterwards.
    assert query(client, options, "SELECT 7 AS n").column("n")[0].as_py() == 7


def test_query_timeout(short_server):
    client, options = authenticated(short_server.uri, *ADMIN)
    started = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError, match="server.query-timeout"):
        query(client, options, "SELECT count(*) FROM generate_series(1, 10000000000)")
    assert time.monotonic() - started < 20


def test_cancel_a_running_query(server):
    # pyarrow turns any cancelled read into a simulated Ctrl-C in the main thread (its
    # SignalStopHandler calls PyErr_SetInterrupt), so hold SIGINT for the test's length.
    interrupts = []
    previous_handler = signal.signal(signal.SIGINT, lambda *_: interrupts.append("SIGINT"))
    try:
        cancel_a_running_query(server)
    finally:
        signal.signal(signal.SIGINT, previous_handler)


def cancel_a_running_query(server):
    client, options = authenticated(server.uri, *ADMIN)
    info = query_info(client, options, "SELECT count(*) FROM generate_series(1, 100000000000)")
    outcome = []

    def run():
        try:
            client.do_get(info.endpoints[0].ticket, options).read_all()
            outcome.append("finished")
        except flight.FlightError as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.5)
    results = list(client.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(info)), options))
    assert results and results[0].body.to_pybytes() == b"\x08\x01"  # CANCEL_STATUS_CANCELLED
    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], flight.FlightCancelledError), outcome
    # Cancelling again: the query is over.
    again = list(client.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(info)), options))
    assert again[0].body.to_pybytes() == b"\x08\x03"  # NOT_CANCELLABLE
    assert query(client, options, "SELECT 1 AS n").column("n")[0].as_py() == 1


def test_client_disconnect_mid_stream_is_handled(server):
    client, options = authenticated(server.uri, *ADMIN)
    info = query_info(client, options, "SELECT value FROM generate_series(1, 50000000)")
    reader = client.do_get(info.endpoints[0].ticket, options)
    first = reader.read_chunk()
    assert first.data.num_rows > 0
    client.close()
    other, other_options = authenticated(server.uri, *ADMIN)
    assert query(other, other_options, "SELECT 2 AS n").column("n")[0].as_py() == 2


# ------------------------------------------------------------------- audit ---


def test_every_query_lands_in_the_audit_log(server):
    marker = f"audit-marker-{time.time_ns()}"
    analyst, analyst_options = authenticated(server.uri, *ANALYST)
    query(analyst, analyst_options, f"SELECT '{marker}' AS m")
    with pytest.raises(flight.FlightUnauthorizedError):
        query(analyst, analyst_options, f"SELECT '{marker}' FROM raw.orders")
    admin, admin_options = authenticated(server.uri, *ADMIN)
    deadline = time.monotonic() + 20
    while True:
        try:
            table = query(
                admin,
                admin_options,
                "SELECT \"user\", role, kind, status, rows, bytes, duration_ms, sql "
                f"FROM hub.audit_log WHERE sql LIKE '%{marker}%' ORDER BY started_at",
            )
        except flight.FlightError:
            table = pa.table({"status": []})
        if table.num_rows >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    records = table.to_pylist()
    assert [(r["user"], r["role"], r["status"]) for r in records][:2] == [
        ("analyst", "analyst", "ok"),
        ("analyst", "analyst", "permission_denied"),
    ], records
    assert records[0]["rows"] == 1 and records[0]["bytes"] > 0 and records[0]["kind"] == "statement"
    # Analysts cannot read the audit log.
    with pytest.raises(flight.FlightUnauthorizedError, match="hub.audit_log"):
        query(analyst, analyst_options, "SELECT * FROM hub.audit_log")


def test_metadata_rpcs_answer(server):
    with connect(server) as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "cdphub"
        assert conn.adbc_get_table_types() == ["LOCAL TEMPORARY", "SYSTEM TABLE", "TABLE", "VIEW"]
