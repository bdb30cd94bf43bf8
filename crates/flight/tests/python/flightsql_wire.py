"""Just enough of the Flight SQL protobuf messages to drive a server with plain pyarrow.flight."""

from __future__ import annotations

import pyarrow.flight as flight

SQL_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def any_message(type_name: str, body: bytes) -> bytes:
    return _field(1, (SQL_PREFIX + type_name).encode()) + _field(2, body)


def statement_query(sql: str) -> bytes:
    """Any(CommandStatementQuery{query})."""
    return any_message("CommandStatementQuery", _field(1, sql.encode()))


def get_catalogs() -> bytes:
    return any_message("CommandGetCatalogs", b"")


def cancel_flight_info_request(info: flight.FlightInfo) -> bytes:
    """CancelFlightInfoRequest{info} (a Flight core message, not wrapped in Any)."""
    return _field(1, info.serialize())


def authenticated(uri: str, user: str, password: str, **kwargs):
    client = flight.FlightClient(uri, **kwargs)
    header = client.authenticate_basic_token(user.encode(), password.encode())
    return client, flight.FlightCallOptions(headers=[header])


def query_info(client, options, sql: str) -> flight.FlightInfo:
    return client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), options)


def query(client, options, sql: str):
    info = query_info(client, options, sql)
    return client.do_get(info.endpoints[0].ticket, options).read_all()


def _packed_uint32(number: int, values) -> bytes:
    return _field(number, b"".join(_varint(v) for v in values))


def get_sql_info(info_ids) -> bytes:
    """Any(CommandGetSqlInfo{info})."""
    return any_message("CommandGetSqlInfo", _packed_uint32(1, info_ids))


def sql_info(client, options, info_ids) -> dict:
    """GetSqlInfo: {info id: value}."""
    descriptor = flight.FlightDescriptor.for_command(get_sql_info(info_ids))
    info = client.get_flight_info(descriptor, options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    return {
        name.as_py(): value.as_py()
        for name, value in zip(table.column("info_name"), table.column("value"))
    }


def cancel_query_action(info: flight.FlightInfo) -> flight.Action:
    """The legacy Flight SQL CancelQuery action: Any(ActionCancelQueryRequest{info})."""
    return flight.Action("CancelQuery", any_message("ActionCancelQueryRequest", _field(1, info.serialize())))
