"""Read-only queries for the pages: whose connections are these, what the tenant granted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from app.consent import records
from app.models import Connection
from app.models import ConsentRequest
from app.models import TenantConsent
from app.platform.extensions import db


def connections_of(user: Mapping[str, Any]) -> list[Connection]:
    """Return the account's connections, newest first."""
    query = (
        select(Connection)
        .where(Connection.oid == user["oid"], Connection.tenant_id == user["tenant_id"])
        .order_by(Connection.created_at.desc())
    )
    return list(db.session.scalars(query))


def owned(user: Mapping[str, Any] | None, connection_id: str) -> Connection | None:
    """Return the connection if this account owns it."""
    if user is None or len(connection_id) > 64:
        return None
    connection = db.session.get(Connection, connection_id)
    if connection is None or connection.oid != user["oid"]:
        return None
    return connection if connection.tenant_id == user["tenant_id"] else None


def active_for(user: Mapping[str, Any], connector_id: str) -> Connection | None:
    """Return the account's live connection for a connector, if any."""
    query = select(Connection).where(
        Connection.oid == user["oid"],
        Connection.tenant_id == user["tenant_id"],
        Connection.connector == connector_id,
        Connection.status != "revoked",
    )
    return db.session.scalars(query).first()


def tenant_consent(user: Mapping[str, Any], connector_id: str) -> TenantConsent | None:
    """Return the tenant-wide consent the account's organisation recorded for a connector."""
    return records.tenant_consents(db.session, user["tenant_id"]).get(connector_id)


def pending_request(user: Mapping[str, Any], connector_id: str) -> ConsentRequest | None:
    """Return the open admin-consent request of the account's organisation for a connector."""
    return records.pending_for(db.session, user["tenant_id"], connector_id)
