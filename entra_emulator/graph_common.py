"""What every Graph answer shares: error JSON, request ids, paging, $select and contexts."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

from flask import g
from flask import jsonify
from flask import request
from werkzeug.wrappers import Response

from entra_emulator.dataset import Data
from entra_emulator.runtime import current

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
METADATA = "https://graph.microsoft.com/v1.0/$metadata#"
FAULT_CODES = {401: "InvalidAuthenticationToken", 429: "TooManyRequests", 500: "generalException",
               503: "serviceNotAvailable", 504: "UnknownError"}  # fmt: skip
FAULT_TEXTS = {401: "Access token has expired or is not yet valid.",
               429: "Too many requests. Retry after the time in the Retry-After header.",
               503: "The service is temporarily unavailable."}  # fmt: skip


class GraphError(Exception):
    """A Graph request answered with Graph's error JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Keep the HTTP status, Graph's error code and its message."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def request_ids() -> tuple[str, str]:
    """Return this request's request-id and client-request-id (echoed when the client sent one)."""
    if "graph_ids" not in g:
        own = str(uuid.uuid4())
        g.graph_ids = (own, request.headers.get("client-request-id") or own)
    ids: tuple[str, str] = g.graph_ids
    return ids


def stamp(response: Response) -> Response:
    """Add Graph's request-id and client-request-id headers to an answer."""
    request_id, client_request_id = request_ids()
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id
    return response


def error_response(status: int, code: str, message: str, challenge: str = "") -> Response:
    """Return Graph's error JSON, with WWW-Authenticate on 401 (a CAE challenge's if given)."""
    request_id, client_request_id = request_ids()
    inner = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    response = jsonify({"error": {"code": code, "message": message, "innerError": inner}})
    response.status_code = status
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    elif status == 401:
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="", authorization_uri="{current().browser_url}/common/oauth2/authorize",'
            f' client_id="{GRAPH_APP_ID}"'
        )
    return stamp(response)


def fault_response(status: int) -> Response:
    """Return the answer of an injected Graph fault (throttling, expired token, outage)."""
    code = FAULT_CODES.get(status, "UnknownError")
    return error_response(status, code, FAULT_TEXTS.get(status, "An injected failure."))


def data() -> Data:
    """Return the world's served data."""
    return current().state.world.data


def page_size(kind: str) -> int:
    """Return the page size: $top (capped at the kind's maximum) or the kind's default."""
    sizes = data().page_sizes
    raw = request.args.get("$top") or request.args.get("top")
    if raw is None:
        return sizes[kind]
    if not raw.isdigit() or int(raw) < 1:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option $top.")
    return min(int(raw), sizes.get(f"{kind}_max", int(raw)))


def _offset(style: str) -> int:
    """Return where this page starts, from $skip or an emulator $skiptoken."""
    if style == "skip":
        raw = request.args.get("$skip") or request.args.get("skip") or "0"
        if not raw.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option $skip.")
        return int(raw)
    token = request.args.get("$skiptoken") or request.args.get("skiptoken")
    if not token:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    found = re.fullmatch(r"Paged=TRUE&p_ID=(\d+)", decoded)
    if found is None:
        raise GraphError(400, "BadRequest", "The $skiptoken is not valid.")
    return int(found.group(1))


def _link(style: str, offset: int) -> str:
    """Return the URL of the page starting at offset, keeping every other query option."""
    names = ("$skip", "skip") if style == "skip" else ("$skiptoken", "skiptoken")
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in names]
    if style == "skip":
        args.append(("$skip", str(offset)))
    else:  # SharePoint's own tokens read "Paged=TRUE&p_ID=<last id>" (base64)
        token = base64.urlsafe_b64encode(f"Paged=TRUE&p_ID={offset}".encode()).decode()
        args.append(("$skiptoken", token.rstrip("=")))
    query = urlencode(args, quote_via=quote, safe="$(),'*:")
    return f"{current().base_url}{request.path}?{query}"


def page(kind: str, total: int, style: str = "token") -> tuple[range, str | None]:
    """Return the indexes of this page and the @odata.nextLink (None on the last page)."""
    size, start = page_size(kind), _offset(style)
    stop = min(total, start + size)
    return range(start, stop), (_link(style, stop) if stop < total else None)


def collection(context: str, value: list[Any], next_link: str | None) -> dict[str, Any]:
    """Return an OData collection body."""
    body: dict[str, Any] = {"@odata.context": METADATA + context, "value": value}
    if next_link:
        body["@odata.nextLink"] = next_link
    return body


def selected(allowed: set[str]) -> list[str]:
    """Return the $select list, refusing properties the type does not have."""
    raw = request.args.get("$select") or request.args.get("select") or ""
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{name}'.")
    return names


def project(item: dict[str, Any], names: list[str], keep: tuple[str, ...]) -> dict[str, Any]:
    """Return item reduced to the selected names plus the always-returned keep names."""
    if not names:
        return item
    return {k: v for k, v in item.items() if k in keep or k in names}
