"""Read-only queries about connections: an account's own, one it owns, its live one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from app.models import DB
from app.models import REVOKED
from app.models import Connection


def _theirs(user: Mapping[str, Any]) -> ColumnElement[bool]:
    """Match the account's connections: in its tenant, and as a guest in other tenants.

    A guest's connection belongs to its guest object (another oid, the resource tenant), but
    MSAL's home_account_id names the same home account in every tenant (from client_info,
    which Entra's token endpoint sends), so the person sees and manages it from home too.
    """
    here = and_(Connection.oid == user["oid"], Connection.tenant_id == user["tenant_id"])
    home = user.get("home_account_id")
    return or_(here, Connection.home_account_id == home) if home else here


def connections_of(db: DB, user: Mapping[str, Any]) -> list[Connection]:
    """Return the account's connections, newest first (guest ones in other tenants too)."""
    query = select(Connection).where(_theirs(user)).order_by(Connection.created_at.desc())
    return list(db.scalars(query))


def owned(db: DB, user: Mapping[str, Any] | None, connection_id: str) -> Connection | None:
    """Return the connection if this account owns it (as itself, or as a guest elsewhere)."""
    if user is None or len(connection_id) > 64:
        return None
    query = select(Connection).where(Connection.id == connection_id, _theirs(user))
    return db.scalars(query).first()


def active_for(db: DB, user: Mapping[str, Any], connector_id: str) -> Connection | None:
    """Return the account's live connection for a connector, if any."""
    query = select(Connection).where(
        Connection.oid == user["oid"],
        Connection.tenant_id == user["tenant_id"],
        Connection.connector == connector_id,
        Connection.status != REVOKED,
    )
    return db.scalars(query).first()
