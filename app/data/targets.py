"""Where a proxied call may go: the connection's resource, and paths that cannot leave it.

The proxy is not an SSRF gadget: the base URL comes from the connector and configuration only,
never from the caller, and a path that could climb out of it (``..``, ``//host``, an absolute
URL, a backslash, an ``@``, or any of these percent-encoded) is refused before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from app.connectors import GRAPH
from app.connectors import STORAGE
from app.connectors import Connector
from app.errors import BadProxyRequest

# Percent-encodings that can change how a path is split or resolved: '.', '/', '\', '@', '%'.
ENCODED_SEPARATORS = re.compile(r"%(2e|2f|5c|40|25)", re.IGNORECASE)
MAX_PATH = 2048
# Graph paths each connector may reach (after the version), besides the caller's own profile.
GRAPH_AREAS = {
    "sharepoint": ("sites",),
    "onedrive": ("me/drive", "me/drives", "drives", "shares"),
    "outlook": ("me/messages", "me/mailfolders"),
}
GRAPH_VERSIONS = ("v1.0", "beta")
STORAGE_VERSION = "2021-08-06"  # sent when the caller names none (Storage refuses no version)


@dataclass(frozen=True)
class Target:
    """The upstream URL of one proxied call, and headers the resource needs."""

    url: str
    headers: Mapping[str, str]


def checked_path(raw: str) -> str:
    """Return the caller's path if it stays inside the resource, else raise BadProxyRequest."""
    if len(raw) > MAX_PATH:
        raise BadProxyRequest("The path is too long.")
    if ENCODED_SEPARATORS.search(raw):
        raise BadProxyRequest("The path may not percent-encode '.', '/', '\\', '@' or '%'.")
    path = unquote(raw)
    if any(ch in path for ch in "\\@") or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise BadProxyRequest("The path may not hold a backslash, an '@' or control characters.")
    if path.startswith("/") or "//" in path or "://" in path:
        raise BadProxyRequest("Give a path on the connection's resource, not a URL or host.")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise BadProxyRequest("The path may not hold '.' or '..' segments.")
    return raw


def resolve(
    connector: Connector,
    path: str,
    *,
    resource_urls: Mapping[str, str],
    storage_accounts: Sequence[str],
    account: str | None,
) -> Target:
    """Return the upstream URL for a checked path on this connector's resource."""
    if connector.resource == GRAPH:
        _check_graph_area(connector, path)
    elif connector.resource != STORAGE and not path.lower().startswith("api/data/"):
        raise BadProxyRequest("Dynamics 365 paths start with api/data/ (the Web API).")
    root = base_url(connector, resource_urls, storage_accounts, account)
    headers = {"x-ms-version": STORAGE_VERSION} if connector.resource == STORAGE else {}
    return Target(f"{root}/{path}", headers)


def base_url(
    connector: Connector,
    resource_urls: Mapping[str, str],
    storage_accounts: Sequence[str],
    account: str | None,
) -> str:
    """Return the root URL of the connection's resource (a Storage account's blob endpoint)."""
    if connector.resource == STORAGE:
        endpoint = f"https://{_account(account, storage_accounts)}.blob.core.windows.net"
        return _base(resource_urls, endpoint)
    if account:
        raise BadProxyRequest("Only Azure Storage connections take an account parameter.")
    return _base(resource_urls, connector.resource)


def _check_graph_area(connector: Connector, path: str) -> None:
    """Refuse a Graph path that belongs to another connector's data."""
    version, _, rest = path.partition("/")
    if version not in GRAPH_VERSIONS:
        raise BadProxyRequest("Microsoft Graph paths start with v1.0/ or beta/.")
    area = rest.lower().rstrip("/")
    if area == "me":
        return  # everyone may read their own profile
    allowed = GRAPH_AREAS.get(connector.id, ())
    if not any(area == prefix or area.startswith(prefix + "/") for prefix in allowed):
        names = ", ".join(f"{version}/{prefix}" for prefix in allowed) or "none"
        raise BadProxyRequest(f"A {connector.name} connection reaches {names} (and me) only.")


def _account(account: str | None, configured: Sequence[str]) -> str:
    """Return the Storage account to use: the one named, if configured, else the first."""
    if not configured:
        raise BadProxyRequest("No Azure Storage account is configured (PORTAL_STORAGE_ACCOUNTS).")
    if account is None:
        return configured[0]
    if account not in configured:
        raise BadProxyRequest(f"The account {account[:64]!r} is not one this portal serves.")
    return account


def _base(resource_urls: Mapping[str, str], resource: str) -> str:
    """Return where a resource is served (configuration may point it at an emulator)."""
    return str(resource_urls.get(resource, resource)).rstrip("/")
