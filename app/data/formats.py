"""Rows out as CSV (RFC 4180, UTF-8, header first), a JSON array or NDJSON, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
}
BATCH = 500  # rows per yielded chunk: few writes to the socket, flat memory
_BOOL = {True: "true", False: "false"}
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class ExportInterrupted(Exception):
    """A later page could not be fetched; what was sent stays sent, the stream says so."""


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a row with nested objects as dotted columns and lists as JSON text."""
    flat: dict[str, Any] = {}
    _flatten_into(flat, row, prefix)
    return flat


def _flatten_into(flat: dict[str, Any], row: Mapping[str, Any], prefix: str) -> None:
    """Add a row's columns to flat (in place: one dict per row, not one per nesting level)."""
    # `type(...) is dict`, not isinstance(Mapping): pages come from json.loads, and the ABC check
    # was a quarter of an export's flattening time (measured with py-spy in make bench).
    for key, value in row.items():
        kind = type(value)
        if kind is dict:
            _flatten_into(flat, value, f"{prefix}{key}.")
        elif kind is list:
            flat[prefix + key] = _COMPACT(value)
        else:
            flat[prefix + key] = value


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Return the columns of these rows in the order they first appear."""
    return list(dict.fromkeys(key for row in rows for key in row))


def csv_stream(columns: list[str], rows: Iterator[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield CSV: the header row, then every row's values in the header's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line breaks
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        # None is written empty by the csv module; booleans as JSON spells them.
        writer.writerow([_BOOL.get(v, v) if type(v) is bool else v for v in map(row.get, columns)])
        if count % BATCH == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def json_stream(rows: Iterator[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield one JSON array of the rows."""
    yield b"["
    for count, row in enumerate(rows):
        yield (("," if count else "") + _json(row)).encode()
    yield b"]"


def ndjson_stream(rows: Iterator[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield one JSON object per line; an interrupted export ends with an error line."""
    try:
        for row in rows:
            yield (_json(row) + "\n").encode()
    except ExportInterrupted as stop:
        yield (
            _json({"error": "export_interrupted", "error_description": str(stop)}) + "\n"
        ).encode()


def _json(value: Mapping[str, Any]) -> str:
    """Return compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _drain(buffer: io.StringIO) -> bytes:
    """Return and clear what the writer buffered."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")
