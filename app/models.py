"""Typed tables: connections, leases, sessions, the audit trail, consent requests, deliveries."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import scoped_session

ACTIVE = "active"
REAUTHENTICATION_REQUIRED = "reauthentication_required"
REVOKED = "revoked"
# Consent request statuses (product.md §5: Pending, Approved, Denied, Expired).
PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"

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


# What the domain takes as its database: a plain ORM session or Flask-SQLAlchemy's scoped one.
DB = Session | scoped_session[Any]


def utcnow() -> datetime:
    """Return the current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """Return a datetime with UTC attached (SQLite hands back naive values)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """Return an ISO 8601 UTC timestamp ending in Z, or None."""
    if value is None:
        return None
    return aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    # MSAL's "<home oid>.<home tenant id>": one person's, in every tenant they are a guest in.
    home_account_id: Mapped[str] = mapped_column(String(160), index=True)
    username: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(320), default="")
    account_type: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(Text)
    authority_tenant: Mapped[str] = mapped_column(String(64))
    # The domain a guest (or a helpdesk link) named the tenant by, for the pages; "" otherwise.
    tenant_domain: Mapped[str] = mapped_column(String(253), default="", server_default="")
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


class RefreshPace(Base):
    """A tenant's refresh pace shared by every instance (app/tokens/throttle.py)."""

    __tablename__ = "refresh_paces"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float, default=0.0)  # epoch seconds, as for leases
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    queue_at: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[int] = mapped_column(Integer, default=0)  # compare-and-swap on every step


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


class ConsentRequest(Base):
    """Users' request that a tenant's admins approve one connector; one open per pair."""

    __tablename__ = "consent_requests"
    __table_args__ = (
        # At most one pending request per tenant and connector gathers every requester.
        Index(
            "uq_consent_requests_open",
            "tenant_id",
            "connector",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    connector: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


class ConsentRequester(Base):
    """One person who asked for a consent request, with their justification."""

    __tablename__ = "consent_requesters"
    __table_args__ = (UniqueConstraint("request_id", "oid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("consent_requests.id"), index=True)
    oid: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(320))
    justification: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenantConsent(Base):
    """Tenant-wide (admin) consent to one connector, recorded after a confirming token."""

    __tablename__ = "tenant_consents"
    __table_args__ = (UniqueConstraint("tenant_id", "connector"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(320))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)


class KnownAdmin(Base):
    """An administrator seen signing in, so new requests of their tenant reach them."""

    __tablename__ = "known_admins"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(320), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivery(Base):
    """One notification (a webhook call or an e-mail) and how its delivery went."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)  # epoch seconds, like leases
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))


class HelpdeskLink(Base):
    """A sharing link the helpdesk hands out; only the HMAC of its token is stored."""

    __tablename__ = "helpdesk_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    connector: Mapped[str | None] = mapped_column(String(64))
    connection_id: Mapped[str | None] = mapped_column(String(36))
    consent_request_id: Mapped[str | None] = mapped_column(String(36))
    login_hint: Mapped[str | None] = mapped_column(String(320), index=True)
    tenant: Mapped[str | None] = mapped_column(String(255))
    account_type: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    multi_use: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(320))
    # The tenant of the helpdesk member who made it (the connection's for the keep-alive job;
    # None from the CLI): a helpdesk that sees one tenant only sees that tenant's links.
    tenant_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_key: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    uses: Mapped[int] = mapped_column(Integer, default=0)


class LinkEvent(Base):
    """One thing that happened to a sharing link: opened, started, completed or failed."""

    __tablename__ = "link_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("helpdesk_links.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(200), default="")


class AccessTrail(Base):
    """Reads of one connection by one code, address, agent and kind in one hour, counted."""

    __tablename__ = "access_trail"
    # The upsert's key: a busy tool adds to one row an hour instead of a row per call.
    __table_args__ = (
        UniqueConstraint("connection_id", "hour", "code", "address", "agent", "what"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[str] = mapped_column(String(36))
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    code: Mapped[str] = mapped_column(String(12))  # a prefix of the code's HMAC, never the code
    address: Mapped[str] = mapped_column(String(45))
    agent: Mapped[str] = mapped_column(String(200))
    what: Mapped[str] = mapped_column(String(16))  # token, connection, proxy, tables, table
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
