"""`consent-portal db upgrade`: apply the database migrations."""

from __future__ import annotations

import click

from app.cli import portal


@click.group("db")
def db_group() -> None:
    """Manage the portal's database."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from app.platform import database

    # The start-up check wants this done, and migrating signs nobody in.
    with portal.app_context(DATABASE_CHECK=False, IDENTITY_CHECK=False) as app:
        database.upgrade(app)
    click.echo("The database is up to date.")
