"""Support details: the copyable block every error page carries."""

from __future__ import annotations

import datetime as dt

from flask import g

from app.errors import PortalError
from app.version import __version__


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
