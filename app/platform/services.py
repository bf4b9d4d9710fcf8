"""The portal's own services, built from settings once per app: the domain, wired together."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy import orm

from app.connectors import Connector
from app.connectors import catalogue
from app.data.export import Exporter
from app.data.export import ExportSettings
from app.data.proxy import Proxy
from app.data.proxy import ProxySettings
from app.data.proxy import proxy_client
from app.data.proxy import tls_context
from app.helpdesk import owner_notice
from app.helpdesk.keepalive import KeepAlive
from app.helpdesk.links import Links
from app.identity.entra import Identity
from app.identity.settings import IdentitySettings
from app.notify.deliveries import Notifier
from app.notify.settings import NotifySettings
from app.platform import metrics
from app.platform.ratelimits import RateLimits
from app.tokens.broker import Broker
from app.tokens.credential_alerts import CredentialAlerts
from app.tokens.locks import RefreshLocks
from app.tokens.store import ConnectionStore
from app.tokens.throttle import RefreshThrottle
from app.tokens.throttle_stores import DatabasePaces
from app.tokens.throttle_stores import RedisPaces
from app.tokens.trail import Trail
from app.tokens.vault import Vault

IDENTITY = "portal.identity"
VAULT = "portal.vault"
BROKER = "portal.broker"
CONNECTION_STORE = "portal.connection_store"
NOTIFIER = "portal.notifier"
LOCKS = "portal.locks"
CONNECTORS = "portal.connectors"
REDIS = "portal.redis"
RATE_LIMITS = "portal.rate_limits"
LINKS = "portal.links"
KEEPALIVE = "portal.keepalive"
PROXY = "portal.proxy"
EXPORTER = "portal.exporter"
TRAIL = "portal.trail"
CREDENTIAL_ALERTS = "portal.credential_alerts"


def build(
    app: Flask,
    redis_client: redis.Redis | None,
    engine: Engine,
) -> None:
    """Build the portal's own services from this app's settings into app.extensions."""
    config = app.config

    # Bound to the engine, not to current_app: table exports fetch their next page in a thread.
    def session_factory() -> orm.Session:
        return orm.Session(engine, expire_on_commit=False)

    vault_ = Vault.from_config(config["ENCRYPTION_KEYS"], config["HASH_KEY"])
    connectors = catalogue(config["CONNECTOR_SCOPES"], config["DYNAMICS_ORGS"])
    identity_ = Identity(IdentitySettings.from_config(config))
    # A holder renews its lease, so the TTL only bounds how long a crashed holder blocks others.
    locks_ = RefreshLocks(
        engine=lambda: engine,
        redis_client=redis_client,
        wait=max(5.0, 2 * config["HTTP_TIMEOUT"] + 2),
    )
    app.extensions[VAULT] = vault_
    app.extensions[CONNECTORS] = connectors
    app.extensions[IDENTITY] = identity_
    app.extensions[LOCKS] = locks_
    app.extensions[RATE_LIMITS] = RateLimits(redis_client)
    notifier_ = Notifier(
        session_factory,
        NotifySettings.from_config(config),
        sealer=vault_,  # mail bodies (with working links) are sealed at rest
        delivered=metrics.delivered,
    )
    app.extensions[NOTIFIER] = notifier_
    alerts = CredentialAlerts(
        sessions=session_factory,
        notifier=notifier_,
        operators=tuple(config["OPERATOR_EMAILS"]),
        public_url=config["PUBLIC_URL"],
        counted=lambda credential, code: metrics.credential_refused(
            f"{credential.kind}-{credential.position}", code
        ),
    )
    app.extensions[CREDENTIAL_ALERTS] = alerts
    identity_.credentials.on_failover = alerts.refused
    app.extensions[CONNECTION_STORE] = ConnectionStore(
        sessions=session_factory, vault=vault_, events=notifier_.publish
    )
    # One write per key per period, like last_used_at: a busy tool does not write per call.
    app.extensions[TRAIL] = Trail(lambda: engine, period=config["LAST_USED_RESOLUTION"])
    app.extensions[BROKER] = Broker(
        trail=app.extensions[TRAIL],
        events=owner_notice.connection_events(notifier_, config["PUBLIC_URL"], connectors),
        sessions=session_factory,
        engine=lambda: engine,
        vault=vault_,
        identity=identity_,
        locks=locks_,
        public_url=config["PUBLIC_URL"],
        lock_ttl=config["REFRESH_LOCK_TTL"],
        last_used_resolution=config["LAST_USED_RESOLUTION"],
        refresh_slots=config["REFRESH_CONCURRENCY"],
        refresh_slot_wait=config["REFRESH_SLOT_WAIT"],
        refreshed=metrics.refresh,
        throttle=RefreshThrottle(
            RedisPaces(redis_client) if redis_client else DatabasePaces(lambda: engine),
            rate=config["REFRESH_RATE"],
            wait=config["REFRESH_RATE_WAIT"],
        ),
    )
    links_ = Links(
        hasher=vault_,
        connectors=connectors,
        public_url=config["PUBLIC_URL"],
        max_days=config["LINK_MAX_DAYS"],
    )
    app.extensions[LINKS] = links_
    _data(app, config, connectors)
    app.extensions[KEEPALIVE] = KeepAlive(
        broker=app.extensions[BROKER],
        links=links_,
        notifier=notifier_,
        render=lambda name, context: app.jinja_env.get_template(name).render(**context),
        days=config["KEEPALIVE_DAYS"],
        contact=config["HELPDESK_CONTACT"] or "",
    )


def _data(app: Flask, config: Any, connectors: dict[str, Connector]) -> None:
    """Build the proxy and the table exporter, each with its pooled HTTP client."""
    settings = ProxySettings(
        resource_urls=config["RESOURCE_URLS"],
        storage_accounts=tuple(config["STORAGE_ACCOUNTS"]),
        timeout=config["DATA_TIMEOUT"],
    )
    broker_ = app.extensions[BROKER]
    app.extensions[PROXY] = Proxy(
        broker=broker_,
        connectors=connectors,
        settings=settings,
        http=proxy_client(config["CA_FILE"] or None),
    )
    app.extensions[EXPORTER] = Exporter(
        broker=broker_,
        connectors=connectors,
        proxy=settings,
        tls=tls_context(config["CA_FILE"] or None),
        settings=ExportSettings(max_wait=config["EXPORT_MAX_WAIT"]),
    )
