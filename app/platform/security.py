"""Response headers, request ids and the same-origin check for state-changing requests."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from app.errors import Forbidden

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' https:"
)
# Chromium applies form-action to the redirect that follows a POST, so Authenticate needs the
# identity provider's origin; the emulator's sign-in pages are plain HTTP on loopback.
LOOPBACK_FORMS = " http://127.0.0.1:* http://localhost:*"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Trust one proxy hop and attach the request id, origin check and headers."""
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    app.before_request(_start_request)
    app.after_request(_secure_headers)


def _start_request() -> None:
    """Give the request an id and refuse cross-site state changes."""
    g.request_id = secrets.token_hex(8)
    if request.method in UNSAFE_METHODS and request.blueprint != "api":
        origin = request.headers.get("Origin")
        # Browsers send Origin on every POST; a foreign one is a cross-site forgery (C22).
        if origin and origin != "null" and origin != public_origin():
            raise Forbidden()


def public_origin() -> str:
    """Return the scheme://host:port of the configured public URL."""
    parts = urlsplit(current_app.config["PUBLIC_URL"])
    return f"{parts.scheme}://{parts.netloc}"


def _secure_headers(response: Response) -> Response:
    """Add the security headers every answer carries."""
    headers = response.headers
    loopback = not current_app.config.get("PRODUCTION")
    headers.setdefault("Content-Security-Policy", CSP + (LOOPBACK_FORMS if loopback else ""))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Request-Id", g.get("request_id", ""))
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    if current_app.config["PUBLIC_URL"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
