"""Liveness, readiness and metrics for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from datetime import UTC
from datetime import datetime

from flask import Blueprint
from flask import current_app
from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import text

from app.errors import Unauthorized
from app.identity import credentials
from app.models import Base
from app.platform import extensions
from app.platform import metrics

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
CHECK_TIMEOUT = 1.5  # each check, and the whole probe: a probe answers in under two seconds
# Checks run side by side so that one slow store cannot make the probe itself time out.
_checks = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readyz")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer while the process can serve requests."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Check the database, Redis (when configured) and the identity provider, in parallel."""
    engine = extensions.db.engine
    redis_client = extensions.redis_client()
    identity = extensions.identity()
    checks: dict[str, Callable[[], bool]] = {
        "database": lambda: _database(engine),
        "identity": lambda: identity.check(timeout=CHECK_TIMEOUT),
    }
    if redis_client is not None:
        checks["redis"] = lambda: bool(redis_client.ping())
    started = time.monotonic()
    futures = {name: _checks.submit(_timed, name, check) for name, check in checks.items()}
    wait(futures.values(), timeout=CHECK_TIMEOUT + 0.25)
    results = {name: _result(name, future, started) for name, future in futures.items()}
    ready = all(r["ok"] for r in results.values())
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": results}
    # A credential near its end is a warning, never a failure: the portal still works today.
    body["warnings"] = credentials.warnings(identity.credential_status(ask_graph=False), _now())
    if ready:
        return body, 200
    return body, 503, {"Retry-After": "5"}


def _timed(name: str, check: Callable[[], bool]) -> dict[str, object]:
    """Run one check, timing it and turning any failure into ok=False."""
    started = time.monotonic()
    try:
        ok = bool(check())
    except Exception as error:  # a readiness probe reports; it never raises
        log.warning("readiness check %s failed: %s", name, type(error).__name__)
        ok = False
    return {"ok": ok, "ms": round((time.monotonic() - started) * 1000, 1)}


def _result(name: str, future: Future[dict[str, object]], started: float) -> dict[str, object]:
    """Return a finished check's result, or a failure for one still running."""
    if future.done():
        return future.result()
    log.warning("readiness check %s timed out", name)
    return {"ok": False, "ms": round((time.monotonic() - started) * 1000, 1), "timeout": True}


def _now() -> datetime:
    """Return the time now in UTC (tests move it)."""
    return datetime.now(UTC)


def _database(engine: Engine) -> bool:
    """Run SELECT 1 on a pooled connection (pre-pinged, with a connect timeout)."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1


@bp.get("/metrics")
def prometheus() -> ResponseReturnValue:
    """Expose Prometheus metrics; with PORTAL_METRICS_TOKEN set, only to its Bearer holder."""
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise Unauthorized()
    engine = extensions.db.engine
    identity = extensions.identity()
    return metrics.render(
        [
            metrics.ConsentRequestsCollector(lambda: _consent_counts(engine)),
            metrics.ClientCredentialsCollector(identity.credential_status),
        ]
    )


def _consent_counts(engine: Engine) -> dict[str, int]:
    """Count consent requests by status, once their table exists (issue 4)."""
    table = Base.metadata.tables.get("consent_requests")
    if table is None or "status" not in table.c:
        return {}
    with engine.connect() as connection:
        if not inspect(connection).has_table("consent_requests"):
            return {}
        rows = connection.execute(select(table.c.status, func.count()).group_by(table.c.status))
        return {str(status): int(count) for status, count in rows}
