"""Read-only queries about connections: an account's own, one it owns, its live one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from app.models import DB
from app.models import REVOKED
from app.models import Connection


def connections_of(db: DB, user: Mapping[str, Any]) -> list[Connection]:
    """Return the account's connections, newest first."""
    query = (
        select(Connection)
        .where(Connection.oid == user["oid"], Connection.tenant_id == user["tenant_id"])
        .order_by(Connection.created_at.desc())
    )
    return list(db.scalars(query))


def owned(db: DB, user: Mapping[str, Any] | None, connection_id: str) -> Connection | None:
    """Return the connection if this account owns it."""
    if user is None or len(connection_id) > 64:
        return None
    connection = db.get(Connection, connection_id)
    if connection is None or connection.oid != user["oid"]:
        return None
    return connection if connection.tenant_id == user["tenant_id"] else None


def active_for(db: DB, user: Mapping[str, Any], connector_id: str) -> Connection | None:
    """Return the account's live connection for a connector, if any."""
    query = select(Connection).where(
        Connection.oid == user["oid"],
        Connection.tenant_id == user["tenant_id"],
        Connection.connector == connector_id,
        Connection.status != REVOKED,
    )
    return db.scalars(query).first()
