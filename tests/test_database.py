"""Migrations: the initial revision matches the models, dev upgrades, production refuses."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect

from app.errors import ConfigError
from app.models import Base
from app.platform import database
from app.platform.extensions import db

pytestmark = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


def test_migrations_create_exactly_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    assert diff == []
    assert {
        "connections",
        "refresh_leases",
        "sessions",
        "audit_events",
        "alembic_version",
    } <= tables
    assert database.is_current(app)


def test_production_refuses_an_old_database(tmp_path: Path, db_url: dict[str, str]) -> None:
    from app import create_app

    key = lambda: base64.b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    production: dict[str, Any] = {
        "PRODUCTION": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "CLIENT_SECRET": "not-the-dev-secret",
        "AUTHORITY_HOST": "https://login.microsoftonline.com",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": f"k1:{key()}",
        "HASH_KEY": key(),
    } | db_url
    with pytest.raises(ConfigError, match="db upgrade"):
        create_app(production)
    admin = create_app(production | {"DATABASE_CHECK": False})
    database.upgrade(admin)
    assert database.is_current(admin)
    with admin.app_context():
        db.engine.dispose()
    ready = create_app(production)
    assert database.is_current(ready)
    with ready.app_context():
        db.engine.dispose()
