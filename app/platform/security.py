"""Proxy trust, request limits, request ids, headers and the same-origin check for changes."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from werkzeug.exceptions import RequestHeaderFieldsTooLarge
from werkzeug.http import parse_list_header

from app.errors import ConfigError
from app.errors import Forbidden

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' https:"
)
# Chromium applies form-action to the redirect that follows a POST, so Authenticate needs the
# identity provider's origin; the emulator's sign-in pages are plain HTTP on loopback.
LOOPBACK_FORMS = " http://127.0.0.1:* http://localhost:*"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Trust only the configured proxies; bound bodies; attach the id, origin check and headers."""
    trusted = trusted_networks(app.config["TRUSTED_PROXIES"])
    app.wsgi_app = TrustedProxies(app.wsgi_app, trusted)  # type: ignore[method-assign]
    # Werkzeug refuses a larger Content-Length before reading a byte, and stops a chunked body
    # at the limit; the API's own, smaller limit is set per request in _start_request.
    app.config["MAX_CONTENT_LENGTH"] = app.config["FORM_MAX_BODY"]
    app.before_request(_start_request)
    app.after_request(_secure_headers)


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Return the networks PORTAL_TRUSTED_PROXIES names; ConfigError for one that is not a CIDR."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError:
            raise ConfigError(
                f"PORTAL_TRUSTED_PROXIES: {value!r} is not an address or CIDR such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


class TrustedProxies:
    """Apply X-Forwarded-For/-Proto/-Host only when the socket peer is a trusted proxy.

    From anyone else the headers are ignored and remote_addr stays the peer, so a client cannot
    pick its own rate-limit bucket or access-log address. Behind trusted proxies the client is the
    right-most X-Forwarded-For address that is not itself a trusted proxy.
    """

    def __init__(self, app: WSGIApplication, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Rewrite the environ for a trusted peer, then call the app."""
        if self.is_trusted(environ.get("REMOTE_ADDR")):
            self.apply(environ)
        return self.app(environ, start_response)

    def is_trusted(self, address: str | None) -> bool:
        """Tell whether an address lies in a trusted network."""
        if not address or not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def apply(self, environ: WSGIEnvironment) -> None:
        """Take the client, scheme and host that the trusted proxy reports."""
        forwarded = parse_list_header(environ.get("HTTP_X_FORWARDED_FOR", ""))
        untrusted = [a for a in forwarded if not self.is_trusted(a)]
        # Every hop a trusted proxy: the left-most is the client.
        client = untrusted[-1] if untrusted else (forwarded[0] if forwarded else "")
        if client and _is_address(client):
            environ["REMOTE_ADDR"] = client.strip("[]")
        # Like ProxyFix(x_proto=1, x_host=1): the value the nearest (trusted) proxy set.
        proto = parse_list_header(environ.get("HTTP_X_FORWARDED_PROTO", ""))
        if proto and proto[-1] in ("http", "https"):
            environ["wsgi.url_scheme"] = proto[-1]
        host = parse_list_header(environ.get("HTTP_X_FORWARDED_HOST", ""))
        if host:
            environ["HTTP_HOST"] = host[-1]


def _is_address(value: str) -> bool:
    """Tell whether value is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _start_request() -> None:
    """Give the request an id, bound its size and refuse cross-site state changes."""
    g.request_id = secrets.token_hex(8)
    config = current_app.config
    if request.path.startswith("/api/"):
        # The token API reads at most a small JSON body ({"scope": ...}); the proxy and the
        # table exports are GET only and never read one.
        request.max_content_length = config["API_MAX_BODY"]
    header_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
    if header_bytes > config["HEADER_MAX_BYTES"]:
        raise RequestHeaderFieldsTooLarge()  # JSON on /api/ (app/web/errors.py)
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
