"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app import extensions

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
CHECK_TIMEOUT = 3.0


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer while the process can serve requests."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Check the database, Redis (when configured) and the identity provider."""
    checks: dict[str, Callable[[], bool]] = {"database": _database, "identity": _identity}
    if extensions.redis_client() is not None:
        checks["redis"] = _redis
    results = {name: _run(name, check) for name, check in checks.items()}
    ready = all(r["ok"] for r in results.values())
    body = {"status": "ready" if ready else "unavailable", "checks": results}
    if ready:
        return body, 200
    return body, 503, {"Retry-After": "5"}


def _run(name: str, check: Callable[[], bool]) -> dict[str, object]:
    """Run one check, timing it and turning any failure into ok=False."""
    started = time.monotonic()
    try:
        ok = bool(check())
    except Exception as error:  # a readiness probe reports; it never raises
        log.warning("readiness check %s failed: %s", name, type(error).__name__)
        ok = False
    return {"ok": ok, "ms": round((time.monotonic() - started) * 1000, 1)}


def _database() -> bool:
    """Run SELECT 1 on a fresh short session."""
    with extensions.session_factory() as db:
        return db.execute(text("SELECT 1")).scalar() == 1


def _redis() -> bool:
    """Ping Redis (its client has connect and read timeouts)."""
    client = extensions.redis_client()
    return bool(client is not None and client.ping())


def _identity() -> bool:
    """Ask the identity provider's discovery endpoint, with a short timeout."""
    return extensions.identity().check(timeout=CHECK_TIMEOUT)
