"""The one renderer for failures: JSON for programs, a page for people, never a stack trace."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Flask
from flask import g
from flask import render_template
from flask import request
from flask.typing import ResponseReturnValue
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.errors import PortalError
from app.errors import ServiceUnavailable
from app.version import __version__

log = logging.getLogger(__name__)
OAUTH_CODES = {
    400: "invalid_request",
    401: "invalid_token",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    413: "invalid_request",
    431: "invalid_request",
    429: "too_many_requests",
}


def register(app: Flask) -> None:
    """Render expected failures, store outages, HTTP errors and anything unexpected."""
    app.register_error_handler(PortalError, render_portal_error)
    for outage in (OperationalError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError):
        app.register_error_handler(outage, _render_outage)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(Exception, _render_unexpected)


def support_block(
    error: PortalError | None = None, connector: str | None = None
) -> list[tuple[str, str]]:
    """Return the ordered (label, value) pairs for the support block of an error page."""
    details = dict(getattr(error, "details", None) or {})
    pairs = [
        ("Time (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")),
        ("Portal version", __version__),
        ("Connector", connector or details.get("connector", "")),
        ("Tenant", details.get("tenant", "")),
        ("AADSTS code", _code(error, details)),
        ("Trace ID", str(getattr(error, "trace_id", "") or details.get("trace_id", ""))),
        (
            "Correlation ID",
            str(getattr(error, "correlation_id", "") or details.get("correlation_id", "")),
        ),
        ("Request ID", str(g.get("request_id", ""))),
    ]
    keep = {"Time (UTC)", "Portal version", "Request ID"}
    return [(label, value) for label, value in pairs if value or label in keep]


def _code(error: PortalError | None, details: dict[str, str]) -> str:
    """Return the AADSTS code as text, if the failure carries one."""
    codes = getattr(error, "codes", None)
    if codes:
        return f"AADSTS{codes[0]}"
    return details.get("aadsts", "")


def _wants_json() -> bool:
    """Tell whether the caller is a program (the API) rather than a person."""
    return request.blueprint in ("api", "health") or request.path.startswith("/api/")


def render_portal_error(error: PortalError) -> ResponseReturnValue:
    """Answer the API in JSON and people with a page that says what to do."""
    headers = error.http_headers()
    if _wants_json():
        return error.api_body(), error.status, headers
    details = support_block(error)
    page = render_template("errors/portal.html", error=error, details=details)
    return page, error.status, headers


def _render_outage(error: Exception) -> ResponseReturnValue:
    """Answer a database or Redis outage with 503 and Retry-After, never a 500 (C45)."""
    log.warning("store unavailable: %s", type(error).__name__)
    return render_portal_error(ServiceUnavailable())


def _render_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render 4xx/5xx from routing, CSRF and limits as a plain page or JSON."""
    status = error.code or 500
    # The exception's own headers (Allow on a 405, Retry-After), never its Content-Type.
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    if _wants_json():
        body = {"error": OAUTH_CODES.get(status, "server_error")}
        return body | {"error_description": error.description or ""}, status, headers
    page = render_template("errors/http.html", status=status, error=error, details=support_block())
    return page, status, headers


def _render_unexpected(error: Exception) -> ResponseReturnValue:
    """Log an unexpected failure once and answer without a stack trace."""
    if isinstance(error, HTTPException):
        return _render_http_error(error)
    log.exception("unhandled error request_id=%s", g.get("request_id", "-"))
    if _wants_json():
        return {"error": "server_error", "error_description": "Unexpected error."}, 500
    return render_template("errors/http.html", status=500, error=None, details=support_block()), 500
