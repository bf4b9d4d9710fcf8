"""Schema migrations: upgrade to head, tell whether the database is current, gate start-up."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade as migrate_upgrade
from flask_sqlalchemy import SQLAlchemy

from app.errors import ConfigError
from app.tokens import keys

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def upgrade(app: Flask) -> None:
    """Bring the database to the newest migration (one process at a time on this host)."""
    lock_path = Path(app.instance_path) / "migrate.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock, app.app_context():
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers starting together must not both migrate
        try:
            if not is_current(app):
                migrate_upgrade(directory=str(MIGRATIONS))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def head() -> str | None:
    """Return the newest revision in migrations/."""
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current(app: Flask) -> str | None:
    """Return the database's revision, or None for an empty database."""
    db: SQLAlchemy = app.extensions["sqlalchemy"]
    with app.app_context(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(app: Flask) -> bool:
    """Tell whether the database is at the newest migration."""
    return current(app) == head()


def prepare(app: Flask) -> None:
    """Upgrade in development; in production refuse a database that is not at head."""
    if app.config.get("DATABASE_CHECK") is False:  # `consent-portal db upgrade` itself
        return
    if not app.config["PRODUCTION"]:
        upgrade(app)
        return
    if not is_current(app):
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()  # this app will never serve
        raise ConfigError(
            "refusing to start: the database is not at the newest migration; "
            "run `consent-portal db upgrade` first"
        )
    if app.config.get("KEY_CHECK") is not False:  # `consent-portal keys` itself skips it
        with app.app_context():
            keys.check(app.extensions["sqlalchemy"].engine, app.extensions["portal.vault"])


def engine_options(
    url: str, timeout: float, connect_timeout: float = 2, pool_size: int = 5
) -> dict[str, Any]:
    """Return engine options: WAL-friendly SQLite waits, bounded PostgreSQL connects."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": timeout}}
    if url.startswith("postgresql"):
        return {
            "pool_pre_ping": True,  # a connection broken by a restart is replaced, not used
            "pool_timeout": timeout,  # waiting for a free pooled connection
            # One kept connection per thread: with SQLAlchemy's default of 5, the busy threads
            # above 5 each opened and closed a connection per request (566 vs 722 token-API
            # calls/s in one served run with 16 threads).
            "pool_size": max(1, pool_size),
            "connect_args": {
                # libpq rounds values under 2 up to 2 seconds
                "connect_timeout": max(2, int(connect_timeout)),
                # a cut network surfaces as an error instead of a hung worker
                "tcp_user_timeout": int(timeout * 1000),
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 2,
            },
        }
    return {"pool_pre_ping": True}


def owner_only(url: str) -> None:
    """Create a SQLite database file owner-only (0600), or make an existing one so (C54).

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    if not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
