"""Table exports: every page fetched with a token fresh at that moment, throttling waited out."""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.connectors import Connector
from app.data import formats
from app.data import tables
from app.data import targets
from app.data.formats import ExportInterrupted
from app.data.line import Answer
from app.data.line import Line
from app.data.line import LineBroken
from app.data.pages import Pages
from app.data.proxy import ProxySettings
from app.errors import BadProxyRequest
from app.errors import ResourceRefused
from app.errors import TemporarilyUnavailable
from app.tokens.broker import Broker

log = logging.getLogger(__name__)
THROTTLED = (429, 503)
MAX_WAITS = 5  # throttled pages waited out per export before it gives up


@dataclass(frozen=True)
class ExportSettings:
    """How long a throttled page may make an export wait, in all and at once."""

    max_wait: float = 30.0  # one Retry-After longer than this ends the export
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Export:
    """An export ready to stream: its media type and its body."""

    media_type: str
    body: Iterator[bytes]


class Exporter:
    """Turns a table request into a stream of rows in the asked format; plain values in and out."""

    def __init__(
        self,
        *,
        broker: Broker,
        connectors: Mapping[str, Connector],
        proxy: ProxySettings,
        tls: ssl.SSLContext,
        settings: ExportSettings | None = None,
    ) -> None:
        self._broker = broker
        self._connectors = connectors
        self._proxy = proxy
        self._tls = tls
        self._settings = settings or ExportSettings()

    def listing(self, code: str) -> list[dict[str, object]]:
        """Return the tables of the code's connector with their parameters."""
        connector = self._connectors[self._broker.connector_of(code)]
        return [t.describe() for t in tables.for_connector(connector.id).values()]

    def open(self, code: str, name: str, params: Mapping[str, str]) -> Export:
        """Check the request, fetch the first page (so a failure is an HTTP error), and stream."""
        form = params.get("format") or "csv"
        if form not in formats.FORMATS:
            raise BadProxyRequest("format: csv, json or ndjson.")
        top = _top(params.get("top"))
        connector = self._connectors.get(self._broker.connector_of(code))
        table = tables.for_connector(connector.id).get(name) if connector else None
        if connector is None or table is None:
            raise BadProxyRequest(f"table: {name[:64]!r} is not a table of this connection.")
        pages = Pages(self, code, connector, table, params, top)
        rows = _limited(pages.rows(), top)
        try:  # the first rows before the first byte, so that a failure is still an HTTP error
            first = list(_take(rows, formats.BATCH))
        except ExportInterrupted as stop:  # a second page, read early, failed
            raise TemporarilyUnavailable(str(stop), retry_after=5) from None
        return Export(formats.FORMATS[form], _encode(form, first, rows))

    # -- one page ---------------------------------------------------------------------------

    def line(self, root: str) -> PageLine:
        """Return one export's kept-alive way to its resource."""
        return PageLine(self, Line(root, self._tls, self._proxy.timeout))

    def token(self, code: str, forced: bool = False) -> str:
        """Return an access token fresh at this moment (refreshed when forced)."""
        return str(self._broker.access_token(code, force_refresh=forced)["access_token"])

    def base(self, connector: Connector, account: str | None) -> str:
        """Return the root URL of the connection's resource (and Storage account)."""
        return targets.base_url(
            connector, self._proxy.resource_urls, self._proxy.storage_accounts, account
        )


class PageLine:
    """Asks for one page at a time on an export's connection, with a token fresh for each.

    A 401 means one forced refresh for that page; 429 and 503 are waited out as Retry-After
    says, up to ExportSettings' limits; anything else ends the export.
    """

    def __init__(self, exporter: Exporter, line: Line) -> None:
        self._exporter, self._line = exporter, line
        self._settings = exporter._settings

    def ask(
        self, code: str, url: str, headers: Mapping[str, str], first: bool
    ) -> Callable[[], bytes]:
        """Send the page's request now; return the function that reads (and checks) it."""
        self._send(code, url, headers, first, forced=False)
        return lambda: self._answer(code, url, headers, first)

    def close(self) -> None:
        """Close the export's connection."""
        self._line.close()

    def _send(
        self, code: str, url: str, headers: Mapping[str, str], first: bool, forced: bool
    ) -> None:
        """Send one request with a token fresh at this moment."""
        token = self._exporter.token(code, forced)
        try:
            self._line.send(url, {**headers, "Authorization": f"Bearer {token}"})
        except LineBroken as error:
            raise _stop(first, f"the resource did not answer ({error})") from None

    def _answer(self, code: str, url: str, headers: Mapping[str, str], first: bool) -> bytes:
        """Read the page's answer; refresh once on a 401, wait out throttling, else stop."""
        waits, forced = 0, False
        while True:
            try:
                answer = self._line.receive()
            except LineBroken as error:
                raise _stop(first, f"the resource did not answer ({error})") from None
            if answer.status == 401 and not forced:
                forced = True  # an expired or revoked token: one forced refresh per page
                self._send(code, url, headers, first, forced=True)
                continue
            if answer.status in THROTTLED and waits < MAX_WAITS:
                wait = _retry_after(answer)
                if wait <= self._settings.max_wait:
                    waits += 1
                    self._settings.sleep(wait)
                    self._send(code, url, headers, first, forced=False)
                    continue
            if answer.status >= 400:
                raise _stop(first, f"the resource answered {answer.status}", answer)
            return answer.body


def _stop(first: bool, why: str, answer: Answer | None = None) -> Exception:
    """Return the error that ends an export: an HTTP error before any row, else mid-stream."""
    log.warning("table export stopped: %s", why)
    if not first:
        return ExportInterrupted(f"The export stopped: {why}.")
    if answer is not None and answer.status < 500 and answer.status != 429:
        return ResourceRefused(answer.status, _refusal(answer))
    retry = round(_retry_after(answer)) if answer is not None else 5
    return TemporarilyUnavailable(f"The export could not start: {why}.", retry_after=retry)


def _encode(
    form: str, first: list[dict[str, Any]], rest: Iterator[dict[str, Any]]
) -> Iterator[bytes]:
    """Return the body in the asked format; CSV columns come from the first page."""
    rows = _chain(first, rest)
    if form == "csv":
        return formats.csv_stream(formats.columns_of(first), rows)
    if form == "json":
        return formats.json_stream(rows)
    return formats.ndjson_stream(rows)


def _chain(first: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield the rows already fetched, then the rest."""
    yield from first
    yield from rest


def _take(rows: Iterator[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    """Yield at most count rows from the iterator, leaving the rest in it."""
    for _ in range(count):
        try:
            yield next(rows)
        except StopIteration:
            return


def _limited(rows: Iterator[dict[str, Any]], top: int | None) -> Iterator[dict[str, Any]]:
    """Stop after top rows (no further pages are fetched)."""
    for count, row in enumerate(rows, 1):
        yield row
        if top is not None and count >= top:
            return


def _top(value: str | None) -> int | None:
    """Return top= as a positive whole number, or None."""
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadProxyRequest("top: a whole number of at least 1.")
    return int(value)


def _refusal(answer: Answer) -> str:
    """Return the resource's own words for a refusal (Graph and Dataverse send error.message)."""
    try:
        error = json.loads(answer.body).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    said = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    detail = f"{code}: {said}" if code and said else str(said or "")
    return f"The resource refused the request ({answer.status}). {detail}".strip()[:500]


def _retry_after(answer: Answer) -> float:
    """Return the Retry-After seconds of an answer (5 when it gives none)."""
    try:
        return max(0.0, float(answer.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0
