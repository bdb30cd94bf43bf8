"""Negative cases: authentication, permissions, PII masking on every path, limits, cancel, audit."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc_flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ADMIN, ANALYST
from flightsql_wire import (
    authenticated,
    cancel_flight_info_request,
    cancel_query_action,
    query,
    query_info,
    sql_info,
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


EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def cells(table: pa.Table):
    """Every non-null cell of an Arrow table, as text."""
    for name in table.column_names:
        for value in table.column(name).to_pylist():
            if value is not None:
                yield str(value)


def test_masking_in_information_schema_and_metadata(server):
    """Metadata lists the masked columns with their types, and no path through it (the
    information_schema tables, SHOW, DESCRIBE, session views under qualified names) shows
    a clear value."""
    profiles = "SELECT unified_id, email AS contact, phone, first_name, birth_date FROM marts.customer_profiles"
    views = [
        f"CREATE VIEW my_profiles AS {profiles}",
        "CREATE VIEW my_ids AS SELECT id_type, id_value FROM staging.identities WHERE id_type IN ('email', 'phone')",
        "CREATE VIEW my_known AS SELECT contact, birth_date FROM my_profiles WHERE contact IS NOT NULL",
    ]
    # The clear values, as a role with `pii` sees them through the very same views.
    with connect(server, ADMIN) as conn:
        for sql in views:
            rows(conn, sql)
        clear = rows(conn, "SELECT contact, phone FROM my_profiles") + rows(
            conn, "SELECT id_value, NULL FROM my_ids"
        )
        admin_columns = rows(
            conn,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('marts', 'public') "
            "AND table_name IN ('customer_profiles', 'my_profiles', 'my_ids', 'my_known') "
            "ORDER BY table_name, ordinal_position",
        )
    emails = {v for row in clear for v in row if v and "@" in v}
    phones = {v for row in clear for v in row if v and "@" not in v}
    assert len(emails) > 50 and len(phones) > 50, (len(emails), len(phones))

    def leaks(table: pa.Table):
        found = []
        for cell in cells(table):
            if cell in emails or cell in phones or any(e in emails for e in EMAIL.findall(cell)):
                found.append(cell)
        return found

    with connect(server, ADMIN) as conn:
        for sql in views:
            rows(conn, sql)
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM cdphub.public.my_known")
            assert leaks(cur.fetch_arrow_table()), "positive control: the admin sees clear values"

    with connect(server, ANALYST) as conn:
        for sql in views:
            rows(conn, sql)
        paths = [
            "SELECT * FROM my_profiles",
            "SELECT * FROM public.my_profiles",
            "SELECT * FROM cdphub.public.my_profiles",
            "SELECT * FROM cdphub.public.my_ids",
            "SELECT * FROM my_known",
            "SELECT k.* FROM cdphub.public.my_known k JOIN marts.customer_profiles p ON k.contact = p.email",
            "SELECT * FROM information_schema.views",
            "SELECT * FROM cdphub.information_schema.views",
            "SELECT * FROM information_schema.columns",
            "SELECT * FROM cdphub.information_schema.columns",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM information_schema.schemata",
            "SELECT * FROM information_schema.df_settings",
            "SHOW TABLES",
            "SHOW COLUMNS FROM marts.customer_profiles",
            "SHOW COLUMNS FROM staging.identities",
            "SHOW COLUMNS FROM my_profiles",
            "DESCRIBE marts.customer_profiles",
            "DESCRIBE my_profiles",
            "DESCRIBE cdphub.public.my_known",
            "DESCRIBE SELECT email, phone FROM marts.customer_profiles",
        ]
        for sql in paths:
            with conn.cursor() as cur:
                cur.execute(sql)
                table = cur.fetch_arrow_table()
            assert not leaks(table), f"{sql} shows clear personal data: {leaks(table)[:5]}"

        # Through the session views, text is a pseudonym and other types NULL.
        profile_rows = rows(conn, "SELECT contact, phone, birth_date FROM cdphub.public.my_profiles")
        assert_masked([r[0] for r in profile_rows])
        assert all(r[0] is None or r[0].startswith("pii:") for r in profile_rows)
        assert all(r[1] is None or r[1].startswith("pii:") for r in profile_rows)
        assert all(r[2] is None for r in profile_rows), "a masked date is NULL"
        assert_masked(column(conn, "SELECT id_value FROM public.my_ids"))
        probe = next(iter(emails))
        assert column(conn, "SELECT count(*) FROM my_known WHERE contact = ?", (probe,)) == [0]

        # The masked columns stay listed, with the types the admin sees.
        analyst_columns = rows(
            conn,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('marts', 'public') "
            "AND table_name IN ('customer_profiles', 'my_profiles', 'my_ids', 'my_known') "
            "ORDER BY table_name, ordinal_position",
        )
        assert analyst_columns == admin_columns
        listed = {(t, c): d for t, c, d in analyst_columns}
        for table_name, name in [
            ("customer_profiles", "email"),
            ("customer_profiles", "phone"),
            ("customer_profiles", "first_name"),
            ("my_profiles", "contact"),
            ("my_ids", "id_value"),
        ]:
            assert listed[(table_name, name)].startswith("Utf8"), (table_name, name, listed)
        assert listed[("customer_profiles", "birth_date")] == "Date32"
        assert listed[("my_known", "birth_date")] == "Date32"
        cols = rows(
            conn,
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'staging' AND table_name = 'identities' ORDER BY ordinal_position",
        )
        id_value = [c for c in cols if c[0] == "id_value"]
        assert id_value and id_value[0][1].startswith("Utf8") and id_value[0][2] == "YES", cols
        assert all(c[3] is None for c in cols), "no column defaults"
        # DESCRIBE and SHOW COLUMNS agree with information_schema.
        for sql, table_name in [
            ("DESCRIBE marts.customer_profiles", "customer_profiles"),
            ("DESCRIBE my_profiles", "my_profiles"),
            ("SHOW COLUMNS FROM marts.customer_profiles", "customer_profiles"),
        ]:
            with conn.cursor() as cur:
                cur.execute(sql)
                shown = cur.fetch_arrow_table()
            pairs = list(zip(shown.column("column_name").to_pylist(), shown.column("data_type").to_pylist()))
            assert pairs == [(c, d) for t, c, d in analyst_columns if t == table_name], sql
        # The session's views, with the SQL they were created with.
        assert rows(
            conn,
            "SELECT table_name, definition FROM information_schema.views "
            "WHERE table_schema = 'public' ORDER BY table_name",
        ) == sorted(zip(["my_profiles", "my_ids", "my_known"], views))
        # The views of other sessions are not visible, and raw is not listed.
        listed_schemas = column(conn, "SELECT DISTINCT table_schema FROM information_schema.columns")
        assert "raw" not in listed_schemas
        with pytest.raises(Exception, match="(?i)permission denied"):
            rows(conn, "DESCRIBE raw.crm_customers")
    with connect(server, ANALYST) as other_session:
        assert column(
            other_session, "SELECT count(*) FROM information_schema.views WHERE table_schema = 'public'"
        ) == [0]


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


ENDLESS = "SELECT count(*) FROM generate_series(1, 100000000000)"


@contextlib.contextmanager
def sigint_held():
    # pyarrow turns any cancelled read into a simulated Ctrl-C in the main thread (its
    # SignalStopHandler calls PyErr_SetInterrupt), so hold SIGINT while a test cancels.
    previous_handler = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_handler)


def read_in_background(client, options, info):
    """Reads the query in a thread; `outcome` gets "finished" or the FlightError."""
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
    return thread, outcome


def test_cancel_a_running_query(server):
    with sigint_held():
        cancel_a_running_query(server)


def cancel_a_running_query(server):
    client, options = authenticated(server.uri, *ADMIN)
    info = query_info(client, options, ENDLESS)
    thread, outcome = read_in_background(client, options, info)
    results = list(client.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(info)), options))
    assert results and results[0].body.to_pybytes() == b"\x08\x01"  # CANCEL_STATUS_CANCELLED
    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], flight.FlightCancelledError), outcome
    # Cancelling again: the query is over.
    again = list(client.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(info)), options))
    assert again[0].body.to_pybytes() == b"\x08\x03"  # NOT_CANCELLABLE
    assert query(client, options, "SELECT 1 AS n").column("n")[0].as_py() == 1


def test_cancel_by_another_user_leaves_the_query_running(server):
    with sigint_held():
        cancel_by_another_user(server)


def cancel_by_another_user(server):
    owner, owner_options = authenticated(server.uri, *ADMIN)
    other, other_options = authenticated(server.uri, *ANALYST)
    info = query_info(owner, owner_options, ENDLESS)
    thread, outcome = read_in_background(owner, owner_options, info)
    # Another user's cancel, by either action, is NOT_FOUND (ArrowKeyError in pyarrow): the
    # same answer as for a query id the server never issued.
    with pytest.raises(pa.ArrowKeyError, match="no query of yours") as unknown:
        forged = flight.FlightInfo(
            pa.schema([]),
            flight.FlightDescriptor.for_command(b""),
            [flight.FlightEndpoint(b"not-a-ticket-of-this-server", [])],
            -1,
            -1,
        )
        list(other.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(forged)), other_options))
    for action in [
        flight.Action("CancelFlightInfo", cancel_flight_info_request(info)),
        cancel_query_action(info),
    ]:
        with pytest.raises(pa.ArrowKeyError) as refused:
            list(other.do_action(action, other_options))
        assert str(refused.value) == str(unknown.value)
    time.sleep(1.0)
    assert thread.is_alive() and outcome == [], "another user's cancel stopped the query"
    # The user who runs it cancels it.
    results = list(owner.do_action(flight.Action("CancelFlightInfo", cancel_flight_info_request(info)), owner_options))
    assert results and results[0].body.to_pybytes() == b"\x08\x01"  # CANCEL_STATUS_CANCELLED
    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], flight.FlightCancelledError), outcome


def audit_records(server, marker: str, expected: int):
    """The hub.audit_log rows of queries whose SQL holds `marker` (waits for the writer)."""
    admin, admin_options = authenticated(server.uri, *ADMIN)
    deadline = time.monotonic() + 20
    while True:
        table = query(
            admin,
            admin_options,
            f"SELECT sql, status, rows, bytes FROM hub.audit_log WHERE sql LIKE '%{marker}%' "
            "AND sql NOT LIKE '%hub.audit_log%' ORDER BY started_at",
        )
        if table.num_rows >= expected or time.monotonic() > deadline:
            return table.to_pylist()
        time.sleep(0.5)


# A client process that reads one batch of its query and dies: no close, no cancel; the OS
# closes its connection.
GONE_CLIENT = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from flightsql_wire import authenticated, query_info
client, options = authenticated(sys.argv[2], sys.argv[3], sys.argv[4])
info = query_info(client, options, sys.argv[5])
reader = client.do_get(info.endpoints[0].ticket, options)
print(reader.read_chunk().data.num_rows, flush=True)
os._exit(0)
"""


def test_client_disconnect_mid_stream_is_handled(single_slot_server):
    with sigint_held():
        client_disconnect_mid_stream(single_slot_server)


def client_disconnect_mid_stream(server):
    marker = f"gone-{time.time_ns()}"
    rows_total = 50_000_000
    streamed = f"SELECT value, '{marker}-mid-stream' AS m FROM generate_series(1, {rows_total})"
    gone = subprocess.run(
        [sys.executable, "-c", GONE_CLIENT, str(Path(__file__).parent), server.uri, *ADMIN, streamed],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gone.returncode == 0 and int(gone.stdout) > 0, gone

    # The only slot is free again at once: a new query does not wait for the first one's
    # timeout (60 s) to get it.
    other, other_options = authenticated(server.uri, *ADMIN)
    started = time.monotonic()
    assert query(other, other_options, "SELECT 2 AS n").column("n")[0].as_py() == 2
    assert time.monotonic() - started < 10

    # A client that gives up while its query waits for the slot frees nothing it does not hold.
    holder, holder_options = authenticated(server.uri, *ADMIN)
    held = holder.do_get(
        query_info(holder, holder_options, f"SELECT value, '{marker}-holder' AS m FROM generate_series(1, {rows_total})").endpoints[0].ticket,
        holder_options,
    )
    assert held.read_chunk().data.num_rows > 0
    impatient = flight.FlightClient(server.uri)
    header = impatient.authenticate_basic_token(ADMIN[0].encode(), ADMIN[1].encode())
    queued = query_info(impatient, flight.FlightCallOptions(headers=[header]), f"SELECT '{marker}-queued' AS m")
    with pytest.raises(flight.FlightTimedOutError):
        # The call's deadline passes while the query waits for the slot: gRPC cancels it.
        impatient.do_get(
            queued.endpoints[0].ticket, flight.FlightCallOptions(headers=[header], timeout=1.0)
        ).read_all()
    # Give the server the time to see the call go (the client's RST_STREAM, and its own reading
    # of the call's grpc-timeout) before the slot frees up: a query still waiting then would run.
    time.sleep(2)
    # The holder stops its call: the slot is free for the next query at once. (Closing the
    # client while the reader is still open would not end the call: the server would see a
    # client that stopped reading, and free the slot only at the query timeout.)
    held.cancel()
    holder.close()
    started = time.monotonic()
    assert query(other, other_options, "SELECT 3 AS n").column("n")[0].as_py() == 3
    assert time.monotonic() - started < 10

    # Each query that lost its client is in the audit log as `disconnected`.
    records = {r["sql"]: r for r in audit_records(server, marker, 3)}
    assert set(records) == {
        streamed,
        f"SELECT value, '{marker}-holder' AS m FROM generate_series(1, {rows_total})",
        f"SELECT '{marker}-queued' AS m",
    }, records
    assert all(r["status"] == "disconnected" for r in records.values()), records
    gone = records[streamed]
    assert 0 < gone["rows"] < rows_total and gone["bytes"] > 0, gone
    assert records[f"SELECT '{marker}-queued' AS m"]["rows"] == 0
    # And the server is still up and serving.
    assert server.process.poll() is None
    assert query(other, other_options, "SELECT 4 AS n").column("n")[0].as_py() == 4


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


def test_get_sql_info_reports_the_configured_statement_timeout(server, short_server):
    """FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT (100) is server.query-timeout, in milliseconds as
    the Flight SQL spec has it; FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT (101) is 0 (no
    transactions)."""
    for srv, millis in [(server, 5 * 60 * 1000), (short_server, 3000)]:
        client, options = authenticated(srv.uri, *ANALYST)
        assert sql_info(client, options, [100, 101]) == {100: millis, 101: 0}


def test_metadata_rpcs_answer(server):
    with connect(server) as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "cdphub"
        assert conn.adbc_get_table_types() == ["LOCAL TEMPORARY", "SYSTEM TABLE", "TABLE", "VIEW"]
