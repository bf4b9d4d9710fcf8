"""Register every blueprint and the single renderer for failures."""

from __future__ import annotations

import logging

from flask import Flask
from flask import current_app
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
from app.identity import roles
from app.version import __version__
from app.web import accounts
from app.web import api
from app.web import auth
from app.web import connections
from app.web import connectors
from app.web import consent
from app.web import health
from app.web import landing
from app.web import outcomes
from app.web.admin import console
from app.web.admin import grant
from app.web.admin import readiness
from app.web.helpdesk import links as helpdesk_links
from app.web.helpdesk import users as helpdesk_users
from app.web.presenters import support_block

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    """Register every blueprint and the one renderer for expected and unexpected failures."""
    people = (auth, connectors, connections, outcomes, consent, landing)
    staff = (console, grant, readiness, helpdesk_links, helpdesk_users)
    machines = (api, health)
    for module in people + staff + machines:
        app.register_blueprint(module.bp)
    app.before_request(accounts.end_old_sign_in)
    app.context_processor(_page_globals)
    app.register_error_handler(PortalError, _render_portal_error)
    for outage in (OperationalError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError):
        app.register_error_handler(outage, _render_outage)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(Exception, _render_unexpected)


def _page_globals() -> dict[str, object]:
    """Give every page the signed-in account, whether they administer it, and the version."""
    user = accounts.current_user()
    admin = bool(roles.admin_basis(user, current_app.config.get("ADMIN_USERS") or ()))
    return {"current_user": user, "portal_admin": admin, "portal_version": __version__}


def _wants_json() -> bool:
    """Tell whether the caller is a program (the API) rather than a person."""
    return request.blueprint in ("api", "health") or request.path.startswith("/api/")


def _render_portal_error(error: PortalError) -> ResponseReturnValue:
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
    return _render_portal_error(ServiceUnavailable())


def _render_http_error(error: HTTPException) -> ResponseReturnValue:
    """Render 4xx/5xx from routing, CSRF and limits as a plain page or JSON."""
    status = error.code or 500
    if _wants_json():
        body = {"error": _http_code(status), "error_description": error.description or ""}
        return body, status
    page = render_template("errors/http.html", status=status, error=error, details=support_block())
    return page, status


def _render_unexpected(error: Exception) -> ResponseReturnValue:
    """Log an unexpected failure once and answer without a stack trace."""
    if isinstance(error, HTTPException):
        return _render_http_error(error)
    log.exception("unhandled error request_id=%s", g.get("request_id", "-"))
    if _wants_json():
        return {"error": "server_error", "error_description": "Unexpected error."}, 500
    return render_template("errors/http.html", status=500, error=None, details=support_block()), 500


def _http_code(status: int) -> str:
    """Return an OAuth-style error code for an HTTP status."""
    return {
        400: "invalid_request",
        401: "invalid_token",
        403: "insufficient_scope",
        404: "not_found",
        405: "method_not_allowed",
        413: "invalid_request",
        429: "too_many_requests",
    }.get(status, "server_error")
