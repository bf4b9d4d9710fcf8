"""What the API's views share: a machine blueprint, the Bearer connection code, its limits."""

from __future__ import annotations

import functools
import hashlib
import re
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
from app.tokens import trail

CODE_FIELDS = ("code", "connection_code", "access_token", "token")
MAX_HEADER = 512  # a connection code is 47 characters; anything this long is not one
# RFC 6750 section 2.1: "Bearer" (any case), exactly one space, a b64token; trailing spaces are
# not part of the code. Tabs, a second space, an empty token or non-ASCII make it malformed.
BEARER = re.compile(r"(?i:bearer) ([A-Za-z0-9\-._~+/]+=*) *")
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
    """Count the call per client address and per parsed code before the view runs; 429 when over.

    A malformed header counts against the address only, then gets the one 401 (or the 400 for a
    code in the query string): its variants never open budgets of their own.
    """

    @functools.wraps(view)
    def counted(*args: Any, **kwargs: Any) -> Any:
        config = current_app.config
        # remote_addr: the socket peer, or the client a trusted proxy names (security.py).
        checks = [("ip:" + (request.remote_addr or "unknown"), config["RATELIMIT_IP"])]
        code = parse_authorization(request.headers.get("Authorization", ""))
        if code is not None:
            # A plain digest is enough for bucketing; the vault's HMAC stays the lookup key.
            digest = hashlib.sha256(code.encode("ascii")).hexdigest()[:32]
            checks.append(("code:" + digest, config["RATELIMIT_TOKEN"]))
        wait = extensions.rate_limits().hit(checks)
        if wait is not None:
            raise TooManyRequests(retry_after=wait)
        if code is None:
            bearer_code()  # raises the same error the view would, before any body is read
        # The access trail: the broker records this read once it knows the connection.
        what = (request.endpoint or "").rpartition(".")[2]
        agent = request.headers.get("User-Agent", "")
        reset = trail.calling.set(trail.Caller(request.remote_addr or "unknown", agent, what))
        try:
            return view(*args, **kwargs)
        finally:
            trail.calling.reset(reset)

    return cast(F, counted)


def parse_authorization(header: str) -> str | None:
    """Return the code of a well-formed `Bearer <code>` header, else None."""
    if len(header) > MAX_HEADER:
        return None
    match = BEARER.fullmatch(header)
    return match.group(1) if match else None


def bearer_code() -> str:
    """Return the code from the Authorization header; refuse it anywhere else (C25).

    The header is checked before the body is read, and the body only within the request's size
    limit (security.py): a bad code with a huge body costs nothing.
    """
    if any(name in request.args for name in CODE_FIELDS):
        raise CodeNotInHeader()  # not looked up and not logged
    code = parse_authorization(request.headers.get("Authorization", ""))
    if code is None:
        raise InvalidToken()  # one body for unknown, malformed and revoked codes (C24)
    if _code_in_body():
        raise CodeNotInHeader()
    return code


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
