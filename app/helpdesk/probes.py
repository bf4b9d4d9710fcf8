"""Test connection: call the connector's own API with a fresh token and explain the answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import requests

from app.connectors import GRAPH
from app.connectors import STORAGE
from app.connectors import Connector

STORAGE_VERSION = "2021-08-06"
MAX_TIMEOUT = 10.0
# The connector's own read, after Graph /me (product.md §3).
GRAPH_READS = {
    "sharepoint": "/v1.0/sites/root",
    "onedrive": "/v1.0/me/drive/root/children",
    "outlook": "/v1.0/me/messages?$top=1",
}
# Graph answers /me only with one of these; the connectors' own scopes do not include them.
PROFILE_SCOPES = frozenset(
    {"User.Read", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}
)
XML_CODE = re.compile(r"<Code>([A-Za-z0-9]{1,80})</Code>")


@dataclass(frozen=True)
class Call:
    """One API call the test made and what its answer means."""

    name: str
    url: str
    status: int | None
    ok: bool
    error_code: str
    explanation: str


def plan(
    connector: Connector, resource_urls: Mapping[str, str], scopes: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Return (name, url) of the calls that test this connector, or [] when none is known."""
    base = str(resource_urls.get(connector.resource) or "").rstrip("/")
    if connector.resource == GRAPH:
        base = base or GRAPH
        calls = []
        if any(s.rsplit("/", 1)[-1] in PROFILE_SCOPES for s in scopes):
            calls.append(("Microsoft Graph: profile (/me)", f"{base}/v1.0/me"))
        read = GRAPH_READS.get(connector.id)
        if read:
            calls.append((f"{connector.name}: read", f"{base}{read}"))
        return calls
    if connector.resource == STORAGE:
        # The storage account is per deployment: PORTAL_RESOURCE_URLS names the one to list.
        return [("Azure Storage: list containers", f"{base}/?comp=list")] if base else []
    base = base or connector.resource.rstrip("/")  # Dynamics: the organization itself
    return [("Dynamics 365: WhoAmI", f"{base}/api/data/v9.2/WhoAmI")]


def run(
    connector: Connector,
    access_token: str,
    username: str,
    *,
    scopes: Sequence[str],
    resource_urls: Mapping[str, str],
    http: requests.Session,
    timeout: float,
) -> list[Call]:
    """Make each call of the plan with the token; never raise for an upstream failure."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if connector.resource == STORAGE:
        headers["x-ms-version"] = STORAGE_VERSION
    results = []
    for name, url in plan(connector, resource_urls, scopes):
        results.append(_call(connector, name, url, headers, username, http, timeout))
    return results


def _call(
    connector: Connector,
    name: str,
    url: str,
    headers: Mapping[str, str],
    username: str,
    http: requests.Session,
    timeout: float,
) -> Call:
    """Make one call and explain its answer."""
    wait = min(timeout, MAX_TIMEOUT)
    try:
        answer = http.get(url, headers=dict(headers), timeout=(min(wait, 5.0), wait))
    except (requests.RequestException, OSError) as error:
        text = f"The API did not answer within {wait:g} seconds ({type(error).__name__})."
        return Call(name, url, None, False, "", text)
    code = error_code(answer)
    ok = 200 <= answer.status_code < 300
    return Call(
        name,
        url,
        answer.status_code,
        ok,
        code,
        explain(connector, answer.status_code, code, username),
    )


def error_code(answer: requests.Response) -> str:
    """Return the service's error code from a header, a JSON or an XML body."""
    header = answer.headers.get("x-ms-error-code")
    if header:
        return header[:80]
    if answer.status_code < 400:
        return ""
    try:
        body = answer.json()
    except ValueError:
        found = XML_CODE.search(answer.text[:4000])
        return found.group(1) if found else ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or "")[:80]
    return str(error or "")[:80]


def explain(connector: Connector, status: int, code: str, username: str) -> str:
    """Return what an API answer means, in plain words, with what to do."""
    if 200 <= status < 300:
        return f"{connector.name} answered for {username}: the connection works end to end."
    if status == 401:
        return (
            "The API did not accept the access token. Send the person a reconnect link; if it "
            "keeps happening, check the portal's resource settings."
        )
    if (
        connector.resource == STORAGE
        and status == 403
        and code == "AuthorizationPermissionMismatch"
    ):
        return (
            f"Consent is in place and the token is valid, but {username} has no Azure data role "
            "on the storage account. Consent alone is not enough for Azure Storage: an Azure "
            "administrator must assign a data role such as Storage Blob Data Reader on the "
            "storage account or container (Access control (IAM) > Add role assignment). "
            "Owner or Contributor alone does not give access to the data."
        )
    if connector.resource == STORAGE and status == 403:
        return "Azure Storage refused the request: check the account's firewall and data roles."
    if connector.resource not in (GRAPH, STORAGE) and status == 403:
        return (
            f"{username} has no security role in this Dynamics 365 environment. An "
            "environment administrator must add the user and give them a security role."
        )
    if status == 404 and connector.id == "onedrive":
        return "The account has no OneDrive yet: the person should open OneDrive once in a browser."
    if status == 403:
        return "Microsoft Graph refused the request: the account may lack a licence or mailbox."
    if status == 429 or status >= 500:
        return "The service is busy or failing right now; try the test again in a few minutes."
    return f"The API answered HTTP {status}{' ' + code if code else ''}."
