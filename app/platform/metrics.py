"""Prometheus metrics, safe under gunicorn's many workers (PROMETHEUS_MULTIPROC_DIR).

The domain reports through hooks wired in app/platform/extensions.py; `/metrics` (app/web/health.py)
renders them.
Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports this
module, so every worker writes its samples to files there and a scrape sums them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from flask import Flask
from flask import Response
from flask import g
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "ccp_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
FLOW_OUTCOMES = Counter(
    "ccp_signin_outcomes_total",
    "Finished sign-in and consent flows by outcome and AADSTS code ('' on success)",
    ["outcome", "aadsts"],
)
TOKEN_API_SECONDS = Histogram(
    "ccp_token_api_seconds",
    "Token API latency by HTTP status",
    ["status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REFRESHES = Counter(
    "ccp_refreshes_total",
    "Refreshes at the identity provider by result (ok, refused, unavailable, busy: no slot)",
    ["result"],
)
WEBHOOK_DELIVERIES = Counter(
    "ccp_webhook_deliveries_total", "Webhook deliveries by result (ok, failed)", ["result"]
)
PROXIED = Counter(
    "ccp_proxy_requests_total",
    "Proxied reads by connector and upstream status",
    ["connector", "status"],
)
MAIL_DELIVERIES = Counter(
    "ccp_mail_deliveries_total", "Mail deliveries by result (ok, failed)", ["result"]
)
CREDENTIAL_REFUSALS = Counter(
    "ccp_client_credential_refusals_total",
    "The portal's own client credentials refused by Entra, by credential and AADSTS code",
    ["credential", "aadsts"],
)


def flow_finished(aadsts: int | None = None, outcome: str | None = None) -> None:
    """Count a finished flow: success, or an Entra error with its AADSTS number."""
    if outcome is None:
        outcome = "success" if aadsts is None else "entra_error"
    FLOW_OUTCOMES.labels(outcome=outcome, aadsts=f"AADSTS{aadsts}" if aadsts else "").inc()


def refresh(result: str) -> None:
    """Count one refresh attempt at the identity provider."""
    REFRESHES.labels(result=result).inc()


def proxied(connector: str, status: int) -> None:
    """Count one proxied read."""
    PROXIED.labels(connector=connector, status=str(status)).inc()


def delivered(channel: str, ok: bool) -> None:
    """Count one delivery attempt, webhook or mail (the notifier's hook)."""
    counter = WEBHOOK_DELIVERIES if channel == "webhook" else MAIL_DELIVERIES
    counter.labels(result="ok" if ok else "failed").inc()


class ConsentRequestsCollector(Collector):
    """Consent requests by status, read from the database at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield one gauge; nothing when the table does not exist yet or the database is down."""
        try:
            counts = self.counts()
        except Exception as error:  # a scrape reports what it can; it never fails on this
            log.debug("consent request counts unavailable: %s", type(error).__name__)
            return
        family = GaugeMetricFamily(
            "ccp_consent_requests", "Consent requests by status", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            family.add_metric([status], count)
        yield family


def credential_refused(name: str, code: int) -> None:
    """Count one refusal of a client credential (once per credential per process)."""
    CREDENTIAL_REFUSALS.labels(credential=name, aadsts=f"AADSTS{code}").inc()


class ClientCredentialsCollector(Collector):
    """Each client credential's end (Unix time) and which one is in use, read at scrape time."""

    def __init__(self, rows: Callable[[], list[dict[str, Any]]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the expiry gauge (credentials with a known end) and the in-use gauge."""
        try:
            rows = self.rows()
        except Exception as error:  # a scrape reports what it can
            log.debug("credential status unavailable: %s", type(error).__name__)
            return
        expiry = GaugeMetricFamily(
            "ccp_client_credential_expiry_timestamp_seconds",
            "When each of the portal's client credentials expires (Unix time), by where that "
            "is known from (certificate, setting, graph)",
            labels=["credential", "kind", "source"],
        )
        in_use = GaugeMetricFamily(
            "ccp_client_credential_in_use",
            "1 for the client credential this process uses, 0 for the others",
            labels=["credential", "kind"],
        )
        for row in rows:
            credential = row["credential"]
            name = f"{credential.kind}-{credential.position}"
            if credential.expires_at is not None:
                expiry.add_metric(
                    [name, credential.kind, credential.expiry_source],
                    credential.expires_at.timestamp(),
                )
            in_use.add_metric([name, credential.kind], 1 if row["in_use"] else 0)
        yield expiry
        yield in_use


def render(extra: list[Collector]) -> Response:
    """Render every metric: all workers' files under gunicorn, this process's otherwise."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _Default(Collector):
    """The process-wide default registry, re-exposed inside a per-scrape registry."""

    def collect(self) -> Iterator[Any]:
        """Yield the default registry's metrics."""
        yield from REGISTRY.collect()


def init_app(app: Flask) -> None:
    """Count and time every request of the app."""
    app.before_request(start_timer)
    app.after_request(count_request)


def start_timer() -> None:
    """Remember when the request started."""
    g.metrics_started = time.perf_counter()


def count_request(response: Response) -> Response:
    """Count the request; time it when it is the token API."""
    rule = request.url_rule
    route = rule.rule if rule else "<unmatched>"
    status = str(response.status_code)
    REQUESTS.labels(route=route, method=request.method, status=status).inc()
    started = g.get("metrics_started")
    if started is not None and request.endpoint == "api.token":
        TOKEN_API_SECONDS.labels(status=status).observe(time.perf_counter() - started)
    return response
