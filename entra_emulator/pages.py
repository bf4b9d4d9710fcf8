"""Browser responses: rendered pages and the ways a flow returns to the application."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import Response
from flask import render_template


def render(template: str, status: int = 200, **context: Any) -> Response:
    """Render one of the emulator's pages, never cached and never framed."""
    response = Response(render_template(template, **context), status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def with_query(url: str, params: dict[str, str]) -> str:
    """Return url with params appended to its query string."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


def to_app(redirect_uri: str, params: dict[str, str], response_mode: str = "query") -> Response:
    """Send the browser back to the app: a 302 (query or fragment) or an auto-POST form."""
    if response_mode == "form_post":
        return render("form_post.html", action=redirect_uri, fields=params)
    if response_mode == "fragment":
        location = redirect_uri.split("#")[0] + "#" + urlencode(params)
    else:
        location = with_query(redirect_uri, params)
    response = Response(status=302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
