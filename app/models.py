"""Typed tables: connections, refresh leases, server-side sessions and the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

ACTIVE = "active"
REAUTHENTICATION_REQUIRED = "reauthentication_required"
REVOKED = "revoked"

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the portal's naming convention."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Return the current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


def new_id() -> str:
    """Return a fresh random connection id."""
    return str(uuid.uuid4())


class Connection(Base):
    """One account's consent to one connector in one tenant, with its sealed MSAL cache."""

    __tablename__ = "connections"
    __table_args__ = (
        # One live connection per account, tenant and connector; revoked rows step aside.
        Index(
            "uq_connections_live_account",
            "home_account_id",
            "tenant_id",
            "connector",
            unique=True,
            sqlite_where=text("status != 'revoked'"),
            postgresql_where=text("status != 'revoked'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    connector: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    oid: Mapped[str] = mapped_column(String(64))
    home_account_id: Mapped[str] = mapped_column(String(160))
    username: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(320), default="")
    account_type: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(Text)
    authority_tenant: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    sealed_cache: Mapped[bytes] = mapped_column(LargeBinary)
    cache_version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(32), default=ACTIVE, index=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_refresh_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def scope_list(self) -> list[str]:
        """Return the consented scopes as a list."""
        return self.scopes.split()


class RefreshLease(Base):
    """A cross-process lease: at most one refresh per connection at a time."""

    __tablename__ = "refresh_leases"

    connection_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float)  # epoch seconds: same SQL on any engine


class ServerSession(Base):
    """Flask-Session's table, owned by our migrations instead of created at start-up."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    expiry: Mapped[datetime | None] = mapped_column(DateTime)  # naive UTC, as Flask-Session writes


class AuditEvent(Base):
    """Who did what to which object, for admins and support."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(160))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
