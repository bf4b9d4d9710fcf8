"""The request log the control plane serves: one entry per answered request."""

from __future__ import annotations

import time
from typing import Any

from flask import Response
from flask import g
from flask import request
from werkzeug.wrappers import Request

from entra_emulator import issued
from entra_emulator.runtime import current
from entra_emulator.state import State

RECEIVED = "entra_emulator.received"  # the WSGI environ key of a request's arrival time


def _entry(
    endpoint: str, method: Any, path: Any, status: int | str, client_id: Any, grant_type: Any
) -> dict[str, Any]:
    """Return a log entry with every field a filter may name."""
    return {
        "time": time.time(),
        "endpoint": endpoint,
        "method": method,
        "path": path,
        "status": status,
        "client_id": client_id,
        "grant_type": grant_type,
        "username": None,
        "query": None,
        "range": None,
    }


def record_response(response: Response) -> Response:
    """Append this request to the request log (control-plane calls excluded)."""
    rule = request.url_rule
    name = rule.endpoint.split(":", 1)[0] if rule else "unknown"
    if name == "control":
        return response
    # Views add what only they know (grant type, client, username, error codes) to g.log_fields.
    entry = _entry(
        name,
        request.method,
        request.path,
        response.status_code,
        request.values.get("client_id"),
        None,
    ) | getattr(g, "log_fields", {})
    entry["query"] = request.query_string.decode("latin-1") or None
    entry["range"] = request.headers.get("x-ms-range") or request.headers.get("Range")
    entry["received"] = request.environ.get(RECEIVED, entry["time"])
    runtime = current()
    with runtime.state.lock:
        runtime.state.record(entry)
        runtime.state.issued.update(issued.secrets_in(response))
    return response


def record_fault(state: State, environ: dict[str, Any], name: str, status: int | str) -> None:
    """Append a request that the fault injector answered before any view ran."""
    form = Request(environ).form if name == "token" else {}
    entry = _entry(
        name,
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO"),
        status,
        form.get("client_id"),
        form.get("grant_type"),
    )
    entry["fault"] = True
    entry["received"] = environ.get(RECEIVED, entry["time"])
    entry["query"] = environ.get("QUERY_STRING") or None
    entry["range"] = environ.get("HTTP_X_MS_RANGE") or environ.get("HTTP_RANGE")
    with state.lock:
        state.record(entry)
