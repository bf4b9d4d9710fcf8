"""Entra's error answers read into an EntraError: AADSTS codes, trace and correlation ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.errors import EntraError

AADSTS = re.compile(r"AADSTS(\d+)")
TRACE_ID = re.compile(r"Trace ID:\s*([0-9a-fA-F-]{8,64})")
CORRELATION_ID = re.compile(r"Correlation ID:\s*([0-9a-fA-F-]{8,64})")


def entra_error(
    response: Mapping[str, Any], *, details: Mapping[str, str] | None = None
) -> EntraError:
    """Return the error of a redirect query or a token-endpoint error body."""
    description = str(response.get("error_description") or "")
    codes = _codes(response.get("error_codes"), description)
    trace = response.get("trace_id") or _first(TRACE_ID, description)
    correlation = response.get("correlation_id") or _first(CORRELATION_ID, description)
    return EntraError(
        str(response.get("error") or "unknown_error"),
        description,
        codes=codes,
        subcode=_str_or_none(response.get("error_subcode")),
        suberror=_str_or_none(response.get("suberror")),
        trace_id=_str_or_none(trace),
        correlation_id=_str_or_none(correlation),
        admin_consent=str(response.get("admin_consent", "")).lower() == "true",
        details=details,
    )


def _codes(raw: Any, description: str) -> tuple[int, ...]:
    """Return AADSTS numbers from error_codes, else from the description text."""
    if isinstance(raw, list | tuple):
        out = tuple(int(c) for c in raw if isinstance(c, int) or str(c).isdigit())
        if out:
            return out
    return tuple(int(m) for m in AADSTS.findall(description)[:1])


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    """Return the first group of pattern in text, if any."""
    match = pattern.search(text)
    return match.group(1) if match else None


def _str_or_none(value: Any) -> str | None:
    """Return value as a string, or None when empty."""
    return str(value) if value not in (None, "") else None
