"""The tables a BI tool loads most, per connector: their parameters and their first page's URL."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from app.data import targets
from app.errors import BadProxyRequest

ODATA = "odata"  # Graph and Dataverse: {"value": [...], "@odata.nextLink": ...}
STORAGE = "storage"  # Storage's XML enumerations with NextMarker
WALK = "walk"  # OneDrive folders walked recursively
SITE = re.compile(r"[A-Za-z0-9.,:_-]{1,400}")
NAME = re.compile(r"[^/\\?#%\x00-\x1f]{1,255}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
MAX_FILTER = 1000


@dataclass(frozen=True)
class Param:
    """One query parameter of a table."""

    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    """One exportable table: its connector, parameters, paging style and first request."""

    name: str
    connector: str
    description: str
    params: tuple[Param, ...]
    paging: str
    first: Callable[[Mapping[str, str]], str]  # the first page's path and query

    def describe(self) -> dict[str, object]:
        """Return the table as the listing shows it."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": [
                {"name": p.name, "required": p.required, "description": p.description}
                for p in self.params
            ],
        }


def site(params: Mapping[str, str]) -> str:
    """Return a SharePoint site id (or root) from the parameters."""
    value = params.get("site") or "root"
    if not SITE.fullmatch(value):
        raise BadProxyRequest("site: give a site id (host,site-guid,web-guid) or root.")
    return value


def named(params: Mapping[str, str], key: str) -> str:
    """Return a required name or id, URL-quoted for one path segment."""
    value = params.get(key)
    if not value:
        raise BadProxyRequest(f"{key}: this table needs it.")
    if not NAME.fullmatch(value):
        raise BadProxyRequest(f"{key}: a name or id without '/', '\\', '?', '#' or '%'.")
    return quote(value, safe="")


def drive_path(params: Mapping[str, str], base: str) -> str:
    """Return the children URL of a drive folder by path (root when none)."""
    path = (params.get("path") or "").strip("/")
    if not path:
        return f"{base}/root/children"
    targets.checked_path(quote(path, safe="/"))  # no '..', no '//', nothing encoded
    return f"{base}/root:/{quote(path, safe='/')}:/children"


def since(params: Mapping[str, str]) -> str:
    """Return an OData filter on receivedDateTime from since=, or nothing."""
    value = params.get("since")
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadProxyRequest("since: an ISO 8601 date or time, e.g. 2026-01-31.") from None
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return "&$filter=" + quote(f"receivedDateTime ge {stamp}", safe="")


def entity(params: Mapping[str, str]) -> str:
    """Return a Dataverse entity set's URL with the optional $select and $filter."""
    name = params.get("set") or ""
    if not IDENTIFIER.fullmatch(name):
        raise BadProxyRequest("set: an entity set name such as accounts.")
    query = []
    select = params.get("select")
    if select:
        fields = [f.strip() for f in select.split(",")]
        if not all(IDENTIFIER.fullmatch(f) for f in fields):
            raise BadProxyRequest("select: column names separated by commas.")
        query.append("$select=" + ",".join(fields))
    where = params.get("filter")
    if where:
        if len(where) > MAX_FILTER or any(ord(ch) < 32 for ch in where):
            raise BadProxyRequest("filter: an OData filter of at most 1000 characters.")
        query.append("$filter=" + quote(where, safe=""))
    return f"api/data/v9.2/{name}" + ("?" + "&".join(query) if query else "")


def container(params: Mapping[str, str]) -> str:
    """Return a Storage container name from the parameters."""
    value = params.get("container") or ""
    if not CONTAINER.fullmatch(value):
        raise BadProxyRequest("container: 3-63 lower-case letters, digits and dashes.")
    return value


def _blobs(params: Mapping[str, str]) -> str:
    """Return the List Blobs URL of a container, with the optional prefix."""
    prefix = params.get("prefix") or ""
    if any(ord(ch) < 32 for ch in prefix) or len(prefix) > 1024:
        raise BadProxyRequest("prefix: at most 1024 printable characters.")
    query = "restype=container&comp=list" + (f"&prefix={quote(prefix, safe='')}" if prefix else "")
    return f"{container(params)}?{query}"


def _messages(params: Mapping[str, str]) -> str:
    """Return the messages URL of a mail folder (the whole mailbox when none)."""
    folder = params.get("folder")
    base = f"v1.0/me/mailFolders/{named(params, 'folder')}" if folder else "v1.0/me"
    return f"{base}/messages?$top=100" + since(params)


SITE_PARAM = Param("site", "site id (host,site-guid,web-guid) or root (default)")
TABLES = (
    Table(
        "sites", "sharepoint", "SharePoint sites you can open", (), ODATA,
        lambda p: "v1.0/sites?search=*",
    ),
    Table(
        "lists", "sharepoint", "the lists of a site", (SITE_PARAM,), ODATA,
        lambda p: f"v1.0/sites/{site(p)}/lists",
    ),
    Table(
        "list-items", "sharepoint", "the items of a list, with their fields",
        (SITE_PARAM, Param("list", "list id or name", required=True)), ODATA,
        lambda p: f"v1.0/sites/{site(p)}/lists/{named(p, 'list')}/items?expand=fields",
    ),
    Table(
        "files", "sharepoint", "the files of a site's document library",
        (SITE_PARAM, Param("path", "folder path in the library (root by default)")), ODATA,
        lambda p: drive_path(p, f"v1.0/sites/{site(p)}/drive"),
    ),
    Table(
        "files", "onedrive", "the files in your OneDrive",
        (Param("path", "folder path (root by default)"),
         Param("recursive", "true to include every subfolder's files")), WALK,
        lambda p: drive_path(p, "v1.0/me/drive"),
    ),
    Table(
        "folders", "outlook", "your mail folders", (), ODATA,
        lambda p: "v1.0/me/mailFolders?$top=100",
    ),
    Table(
        "messages", "outlook", "your messages, newest first",
        (Param("folder", "mail folder id or well-known name (inbox); every folder by default"),
         Param("since", "only messages received at or after this ISO 8601 time")), ODATA,
        _messages,
    ),
    Table(
        "whoami", "dynamics", "who the connection is in Dataverse", (), ODATA,
        lambda p: "api/data/v9.2/WhoAmI",
    ),
    Table(
        "entity", "dynamics", "the rows of an entity set",
        (Param("set", "entity set name, e.g. accounts", required=True),
         Param("select", "columns, comma-separated"),
         Param("filter", "an OData $filter, passed on")), ODATA,
        entity,
    ),
    Table(
        "containers", "azure-storage", "the account's containers",
        (Param("account", "storage account (the first configured by default)"),), STORAGE,
        lambda p: "?comp=list",
    ),
    Table(
        "blobs", "azure-storage", "the blobs of a container",
        (Param("account", "storage account (the first configured by default)"),
         Param("container", "container name", required=True),
         Param("prefix", "only blobs whose names start with this")), STORAGE,
        _blobs,
    ),
)  # fmt: skip


def for_connector(connector_kind: str) -> dict[str, Table]:
    """Return the tables of a connector kind (Dynamics connectors are dynamics*), by name."""
    kind = "dynamics" if connector_kind.startswith("dynamics") else connector_kind
    return {table.name: table for table in TABLES if table.connector == kind}
