"""What the API's views share: a machine blueprint, the Bearer connection code, its limits."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from typing import cast

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import TooManyRequests

from app.errors import CodeNotInHeader
from app.errors import InvalidToken
from app.errors import PortalError
from app.platform import extensions
from app.platform.extensions import csrf

CODE_FIELDS = ("code", "connection_code", "access_token", "token")
F = TypeVar("F", bound=Callable[..., Any])


def machine_blueprint(name: str, import_name: str) -> Blueprint:
    """Return a blueprint under /api/v1 for tools: no CSRF, no caching, errors as JSON."""
    bp = Blueprint(name, import_name, url_prefix="/api/v1")
    csrf.exempt(bp)  # machines authenticate with a Bearer code, never with a cookie
    bp.after_request(_no_store)
    bp.register_error_handler(TooManyRequests, _too_many)
    bp.register_error_handler(PortalError, _render_error)
    return bp


def limited(view: F) -> F:
    """Count the call per client address and per code before the view runs; 429 when over."""

    @functools.wraps(view)
    def counted(*args: Any, **kwargs: Any) -> Any:
        config = current_app.config
        # A plain digest is enough for bucketing; the vault's HMAC stays the lookup key.
        header = request.headers.get("Authorization", "")[:512].encode("utf-8", "replace")
        code_key = "code:" + hashlib.sha256(header).hexdigest()[:32]
        # remote_addr: ProxyFix has already applied the one trusted hop.
        address_key = "ip:" + (request.remote_addr or "unknown")
        wait = extensions.rate_limits().hit(
            [(address_key, config["RATELIMIT_IP"]), (code_key, config["RATELIMIT_TOKEN"])]
        )
        if wait is not None:
            raise TooManyRequests(retry_after=wait)
        return view(*args, **kwargs)

    return cast(F, counted)


def bearer_code() -> str:
    """Return the code from the Authorization header; refuse it anywhere else (C25)."""
    if any(name in request.args for name in CODE_FIELDS) or _code_in_body():
        raise CodeNotInHeader()  # not looked up and not logged
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise InvalidToken()
    return value.strip()


def _code_in_body() -> bool:
    """Tell whether a form or JSON body carries something named like a code."""
    if request.form and any(name in request.form for name in CODE_FIELDS):
        return True
    body = request.get_json(silent=True) if request.is_json else None
    return isinstance(body, dict) and any(name in body for name in CODE_FIELDS)


def _no_store(response: Response) -> Response:
    """Keep token answers out of every cache (RFC 6749 section 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _too_many(error: TooManyRequests) -> ResponseReturnValue:
    """Answer a breached rate limit in JSON with Retry-After."""
    retry_after = error.retry_after if isinstance(error.retry_after, int) else 60
    body = {"error": "too_many_requests", "error_description": "Too many requests; slow down."}
    return body, 429, {"Retry-After": str(retry_after)}


def _render_error(error: PortalError) -> ResponseReturnValue:
    """Answer every expected failure in the RFC 6750 style, with its headers."""
    return error.api_body(), error.status, error.http_headers()
