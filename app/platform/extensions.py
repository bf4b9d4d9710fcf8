"""Shared services, created unbound and bound in init_app; accessors read them back."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any
from typing import cast

import redis
from flask import Flask
from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import event
from sqlalchemy import orm

from app.connectors import Connector
from app.data.export import Exporter
from app.data.proxy import Proxy
from app.helpdesk.keepalive import KeepAlive
from app.helpdesk.links import Links
from app.identity.entra import Identity
from app.models import Base
from app.notify.deliveries import Notifier
from app.platform import database
from app.platform import services
from app.platform import sessions
from app.platform.ratelimits import RateLimits
from app.platform.services import BROKER
from app.platform.services import CONNECTION_STORE
from app.platform.services import CONNECTORS
from app.platform.services import CREDENTIAL_ALERTS
from app.platform.services import EXPORTER
from app.platform.services import IDENTITY
from app.platform.services import KEEPALIVE
from app.platform.services import LINKS
from app.platform.services import LOCKS
from app.platform.services import NOTIFIER
from app.platform.services import PROXY
from app.platform.services import RATE_LIMITS
from app.platform.services import REDIS
from app.platform.services import TRAIL
from app.platform.services import VAULT
from app.tokens.broker import Broker
from app.tokens.credential_alerts import CredentialAlerts
from app.tokens.locks import RefreshLocks
from app.tokens.store import ConnectionStore
from app.tokens.trail import Trail
from app.tokens.vault import Vault

log = logging.getLogger(__name__)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()


server_session = sessions.ServerSessions(lambda: session_factory())


def init_app(app: Flask) -> None:
    """Bind the database, sessions, CSRF and the portal's own services to this app."""
    config = app.config
    redis_client = make_redis(config) if config["REDIS_URL"] else None
    app.extensions[REDIS] = redis_client
    if redis_client is not None:
        config["SESSION_REDIS"] = redis_client
    database.owner_only(config["DATABASE_URL"])  # before the engine first creates it
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(database.MIGRATIONS))
    csrf.init_app(app)  # before the sessions' store-down refusal, in the order they always ran
    sessions.init_app(app, server_session)
    with app.app_context():  # lease renewal and the notifier run in threads without a context
        engine = db.engine
    services.build(app, redis_client, engine)
    database.prepare(app)


def make_redis(config: Any) -> redis.Redis:
    """Return a Redis client with short connect and read timeouts (Redis answers in < 1 ms)."""
    timeout = float(config["REDIS_TIMEOUT"])
    return redis.Redis.from_url(
        config["REDIS_URL"],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


def session_factory() -> orm.Session:
    """Return a short-lived ORM session on this app's engine, apart from the request's."""
    return orm.Session(db.engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Use WAL and wait for locks instead of failing with "database is locked" (C35)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def identity() -> Identity:
    """Return this app's MSAL wrapper."""
    return cast(Identity, current_app.extensions[IDENTITY])


def credential_alerts() -> CredentialAlerts:
    """Return this app's alerts about its own client credentials."""
    return cast(CredentialAlerts, current_app.extensions[CREDENTIAL_ALERTS])


def vault() -> Vault:
    """Return this app's vault (encryption keys and code hashing)."""
    return cast(Vault, current_app.extensions[VAULT])


def notifier() -> Notifier:
    """Return this app's notifier (webhooks and e-mail)."""
    return cast(Notifier, current_app.extensions[NOTIFIER])


def broker() -> Broker:
    """Return this app's token broker."""
    return cast(Broker, current_app.extensions[BROKER])


def trail() -> Trail:
    """Return this app's access trail."""
    return cast(Trail, current_app.extensions[TRAIL])


def connection_store() -> ConnectionStore:
    """Return this app's connection store (create, reconnect, new code, revoke)."""
    return cast(ConnectionStore, current_app.extensions[CONNECTION_STORE])


def rate_limits() -> RateLimits:
    """Return this app's rate-limit counters (in Redis when configured)."""
    return cast(RateLimits, current_app.extensions[RATE_LIMITS])


def locks() -> RefreshLocks:
    """Return this app's refresh locks."""
    return cast(RefreshLocks, current_app.extensions[LOCKS])


def connectors() -> dict[str, Connector]:
    """Return this deployment's connectors by id."""
    return cast(dict[str, Connector], current_app.extensions[CONNECTORS])


def links() -> Links:
    """Return this app's helpdesk links (make, find)."""
    return cast(Links, current_app.extensions[LINKS])


def keepalive() -> KeepAlive:
    """Return this app's keep-alive job and reconnect mail."""
    return cast(KeepAlive, current_app.extensions[KEEPALIVE])


def proxy() -> Proxy:
    """Return this app's read-only proxy for tools."""
    return cast(Proxy, current_app.extensions[PROXY])


def exporter() -> Exporter:
    """Return this app's table exporter."""
    return cast(Exporter, current_app.extensions[EXPORTER])


def redis_client() -> redis.Redis | None:
    """Return the shared Redis client, or None without PORTAL_REDIS_URL."""
    return cast("redis.Redis | None", current_app.extensions.get(REDIS))
