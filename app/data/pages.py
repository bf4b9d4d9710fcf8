"""The pages of one export, followed to the end: OData nextLink, Storage NextMarker, folders."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import Protocol
from urllib.parse import quote
from urllib.parse import urlsplit

from app.connectors import Connector
from app.data import formats
from app.data import tables
from app.data import targets
from app.data.formats import ExportInterrupted
from app.errors import BadProxyRequest

DATAVERSE_PAGE = 5000  # Dataverse's own maximum page size


class PageSource(Protocol):
    """One export's way to its resource: ask for a page now, read it later."""

    def ask(
        self, code: str, url: str, headers: Mapping[str, str], first: bool
    ) -> Callable[[], bytes]:
        """Send a page's request now; return the function that reads its body."""
        ...

    def close(self) -> None:
        """Let go of the connection."""
        ...


class Fetcher(Protocol):
    """What the pages need of the exporter: a page source per export, the resource's root."""

    def line(self, root: str) -> PageSource:
        """Return a page source for this export, on the resource's origin."""
        ...

    def base(self, connector: Connector, account: str | None) -> str: ...


class Pages:
    """The pages of one export, followed to the end: nextLink, NextMarker or a folder walk."""

    def __init__(
        self,
        exporter: Fetcher,
        code: str,
        connector: Connector,
        table: tables.Table,
        params: Mapping[str, str],
        top: int | None = None,
    ) -> None:
        self.exporter, self.code, self.table, self.params = exporter, code, table, params
        self.wanted = top  # rows the caller still wants: no page is fetched ahead past them
        account = params.get("account") if connector.id == "azure-storage" else None
        if params.get("account") and account is None:
            raise BadProxyRequest("account: only Azure Storage tables take one.")
        self.root = exporter.base(connector, account)
        self.headers = _headers(connector)
        self.path = table.first(params)  # checks the parameters before any request
        self.asked = False  # only the first request's failure is an HTTP error

    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield every row of every page, flattened."""
        self.source = self.exporter.line(self.root)
        try:
            if self.table.paging == tables.STORAGE:
                yield from self._storage()
            elif self.table.paging == tables.WALK and self.params.get("recursive") == "true":
                yield from self._walk(f"{self.root}/{self.path}")
            else:
                yield from self._odata(f"{self.root}/{self.path}")
        finally:
            self.source.close()

    def _ask(self, url: str) -> Callable[[], bytes]:
        """Send a page's request now; return the function that reads its body."""
        first, self.asked = not self.asked, True
        return self.source.ask(self.code, url, self.headers, first)

    def _odata(self, url: str | None) -> Iterator[dict[str, Any]]:
        """Follow @odata.nextLink to the end (only on the resource's own origin).

        The next page is asked for before this one's rows are flattened and encoded, so the
        resource's time per page and ours overlap instead of adding up; a top= that this page
        fills asks for no more.
        """
        page_body = self._ask(url) if url else None
        while page_body is not None:
            page = _json(page_body())
            values = page.get("value")
            rows = values if isinstance(values, list) else [page]
            stop: ExportInterrupted | None = None
            try:
                url = self._next(page.get("@odata.nextLink"))
            except ExportInterrupted as error:  # after this page's rows, as before
                url, stop = None, error
            page_body = self._ask(url) if url and self._more_after(len(rows)) else None
            for row in rows:
                yield formats.flatten(row)
            if stop is not None:
                raise stop

    def _more_after(self, count: int) -> bool:
        """Count a page's rows against top=; return whether another page may still be read."""
        if self.wanted is None:
            return True
        self.wanted -= count
        return self.wanted > 0

    def _walk(self, url: str) -> Iterator[dict[str, Any]]:
        """Yield a folder's items, then its subfolders' items, breadth first."""
        folders = [url]
        while folders:
            for row in self._odata(folders.pop(0)):
                yield row
                if "folder.childCount" in row and row.get("id"):
                    item = quote(str(row["id"]), safe="")
                    folders.append(f"{self.root}/v1.0/me/drive/items/{item}/children")

    def _storage(self) -> Iterator[dict[str, Any]]:
        """Follow Storage's NextMarker to the end."""
        marker = ""
        while True:
            url = f"{self.root}/{self.path}" + (
                f"&marker={quote(marker, safe='')}" if marker else ""
            )
            tree = ElementTree.fromstring(self._ask(url)())
            for element in tree.iter():
                if element.tag in ("Container", "Blob"):
                    yield _xml_row(element)
            marker = (tree.findtext("NextMarker") or "").strip()
            if not marker:
                return

    def _next(self, link: object) -> str | None:
        """Return the next page's URL if it stays on the resource, else end (and say why)."""
        if not isinstance(link, str) or not link:
            return None
        if _origin(link) != _origin(self.root):
            raise ExportInterrupted("The resource's next page pointed elsewhere; stopped.")
        return link


def _headers(connector: Connector) -> dict[str, str]:
    """Return the headers every page of this connector's tables needs."""
    if connector.id == "azure-storage":
        return {"x-ms-version": targets.STORAGE_VERSION}
    if connector.id.startswith("dynamics"):
        return {"Prefer": f"odata.maxpagesize={DATAVERSE_PAGE}", "Accept": "application/json"}
    return {"Accept": "application/json"}


def _xml_row(element: ElementTree.Element) -> dict[str, Any]:
    """Return a Container or Blob element as a row: its name and its properties."""
    row: dict[str, Any] = {"name": element.findtext("Name")}
    properties = element.find("Properties")
    for prop in properties if properties is not None else ():
        row[prop.tag] = prop.text
    return row


def _json(body: bytes) -> dict[str, Any]:
    """Return a page's JSON object, or end the export when it is not one."""
    try:
        page = json.loads(body)
    except ValueError:
        raise ExportInterrupted("The resource answered something other than JSON.") from None
    return page if isinstance(page, dict) else {"value": page}


def _origin(url: str) -> tuple[str, str]:
    """Return a URL's scheme and host:port."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
