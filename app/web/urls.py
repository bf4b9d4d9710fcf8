"""Keep redirects on this site (open-redirect defence, C12)."""

from __future__ import annotations

from urllib.parse import unquote
from urllib.parse import urlsplit


def local_path(target: str | None, fallback: str) -> str:
    """Return target if it is a path on this site, else fallback."""
    if not target or len(target) > 2048:
        return fallback
    decoded = unquote(target)
    if not target.startswith("/") or decoded.startswith("//") or target.startswith("//"):
        return fallback
    if any(ch in decoded for ch in "\\\t\r\n\x0b\x0c\x00") or decoded[:2].strip() != decoded[:2]:
        return fallback  # browsers read "/\x", "/\t/x" and "/ /x" as another host
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target
