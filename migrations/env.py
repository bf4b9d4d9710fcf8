"""Alembic environment for Flask-Migrate: the portal's engine and metadata."""

from __future__ import annotations

from alembic import context
from flask import current_app

config = context.config


def _db():  # type: ignore[no-untyped-def]
    """Return the Flask-SQLAlchemy extension of the current app."""
    return current_app.extensions["migrate"].db


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=str(_db().engine.url),
        target_metadata=_db().metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a connection from the app's engine."""
    with _db().engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=_db().metadata,
            render_as_batch=True,  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
