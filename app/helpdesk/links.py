"""Helpdesk sharing links: create, find by token, track, revoke (stored as an HMAC only)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select
from sqlalchemy import select

from app.connectors import Connector
from app.errors import LinkRefused
from app.helpdesk import link_events
from app.helpdesk import link_fields
from app.helpdesk.link_fields import ADMIN_CONSENT
from app.helpdesk.link_fields import DEFAULT_DAYS
from app.helpdesk.link_fields import FLOW_KINDS
from app.helpdesk.link_fields import KINDS
from app.helpdesk.link_fields import RECONNECT
from app.identity import roles
from app.models import DB
from app.models import REVOKED
from app.models import Connection
from app.models import HelpdeskLink
from app.models import aware
from app.models import iso
from app.models import utcnow
from app.tokens.vault import Vault

MAX_TOKEN = 128  # our tokens are 43 characters; anything much longer is not ours
GUID_LIKE = "________-____-____-____-____________"  # a tenant id, in LIKE's one-character "_"


@dataclass(frozen=True)
class NewLink:
    """A link just created: the row and its URL, which is shown once and never stored."""

    link: HelpdeskLink
    url: str


class Links:
    """Makes and finds links: the token's HMAC key, the connectors and the public URL it needs."""

    def __init__(
        self,
        *,
        hasher: Vault,
        connectors: Mapping[str, Connector],
        public_url: str,
        max_days: int = 30,
    ) -> None:
        self._hasher = hasher
        self.connectors = connectors
        self.public_url = public_url.rstrip("/")
        self.max_days = max_days

    def create(
        self,
        db: DB,
        *,
        kind: str,
        created_by: str,
        tenant_id: str | None,
        scope: frozenset[str] | None,
        connector: str | None = None,
        login_hint: str | None = None,
        tenant: str | None = None,
        account_type: str | None = None,
        connection_id: str | None = None,
        consent_request_id: str | None = None,
        days: float = DEFAULT_DAYS,
        multi_use: bool = False,
        note: str | None = None,
    ) -> NewLink:
        """Create a sharing link after checking what it points at; return it with its URL.

        `tenant_id` is the creator's tenant (it decides which helpdesk sees the link); `scope` the
        tenants the creator may act on (None: every tenant), from roles.helpdesk_scope.
        """
        if kind not in KINDS:
            raise LinkRefused(f"Unknown link kind {kind!r}.")
        fields = link_fields.target(
            db, self.connectors, kind, connector, connection_id, consent_request_id, scope
        )
        hint = None if kind == RECONNECT else link_fields.login_hint(login_hint)
        tenant = link_fields.tenant(tenant)  # a reconnect's hint is the connection's own account
        if kind == ADMIN_CONSENT:
            tenant = link_fields.admin_tenant(tenant, scope)
        if scope is not None:  # a one-tenant helpdesk addresses only its own tenant (C57)
            domains = link_fields.own_domains(db, created_by, scope)
            link_fields.addressed_within(tenant, scope, domains, hint)
        token = secrets.token_urlsafe(32)  # 256 bits from secrets (checklist principle 3)
        link = HelpdeskLink(
            token_hash=self._hasher.hash_token(token),
            kind=kind,
            login_hint=hint,
            tenant=tenant,
            account_type=link_fields.account_type(account_type),
            note=(note or "").strip()[:500] or None,
            multi_use=bool(multi_use) or kind not in FLOW_KINDS,
            created_by=created_by[:320],
            tenant_id=tenant_id,
            created_at=utcnow(),
            expires_at=utcnow() + link_fields.lifetime(days, self.max_days),
            uses=0,
            **fields,
        )
        db.add(link)
        db.flush()
        expires = iso(link.expires_at) or ""
        link_events.audit(db, created_by, "link.created", link.id, kind=kind, expires_at=expires)
        db.commit()
        return NewLink(link, self.url_of(token))

    def url_of(self, token: str) -> str:
        """Return the absolute URL of a link token, from PUBLIC_URL."""
        return f"{self.public_url}/l/{token}"

    def find_usable(self, db: DB, token: str) -> HelpdeskLink | None:
        """Return the link for a token if it can still be used; every failure looks the same."""
        digest = self._hasher.hash_token(token[:MAX_TOKEN])  # always one HMAC and one query
        link = db.scalars(select(HelpdeskLink).where(HelpdeskLink.token_hash == digest)).first()
        if link is None or len(token) > MAX_TOKEN or not usable(db, link):
            return None
        return link


def usable(db: DB, link: HelpdeskLink, now: datetime | None = None) -> bool:
    """Tell whether a link is neither revoked, expired nor used up."""
    now = now or utcnow()
    if link.revoked_at is not None or aware(link.expires_at) <= now:
        return False
    if link.kind in FLOW_KINDS and not link.multi_use and link.completed_at is not None:
        return False
    if link.kind == RECONNECT:
        connection = db.get(Connection, link.connection_id or "")
        return connection is not None and connection.status != REVOKED
    return True


def status(link: HelpdeskLink, now: datetime | None = None) -> str:
    """Return the label the helpdesk sees for a link."""
    now = now or utcnow()
    if link.revoked_at is not None:
        return "Revoked"
    if link.completed_at is not None:
        return "Completed"
    if aware(link.expires_at) <= now:
        return "Expired"
    if link.failed_at is not None:
        return "Failed"
    if link.opened_at is not None:
        return "Opened"
    return "Not opened"


def visible(db: DB, link_id: str, scope: frozenset[str] | None) -> HelpdeskLink | None:
    """Return a link by id if it is within the helpdesk scope (else None, as if unknown)."""
    link = db.get(HelpdeskLink, link_id[:36])
    if link is None or not roles.in_scope(link.tenant_id, scope):
        return None
    if scope is not None and link_fields.is_tenant_id(link.tenant) and link.tenant not in scope:
        return None  # made before C57 for another tenant: its events are not this helpdesk's
    return link


def revoke(db: DB, link: HelpdeskLink, actor: str) -> None:
    """Revoke a link: from now on it gives the same page as one never issued."""
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        link.revoked_by = actor[:320]
        link_events.record(db, link, "revoked", actor)
        link_events.audit(db, actor, "link.revoked", link.id, kind=link.kind)
        db.commit()


def recent(db: DB, scope: frozenset[str] | None, limit: int = 50) -> list[HelpdeskLink]:
    """Return the newest links within the helpdesk scope (None: every tenant's)."""
    query = _scoped(select(HelpdeskLink), scope)
    return list(db.scalars(query.order_by(HelpdeskLink.created_at.desc()).limit(limit)))


def for_person(
    db: DB, username: str, scope: frozenset[str] | None, limit: int = 20
) -> list[HelpdeskLink]:
    """Return the links made for one person (by login hint or their connections), in scope."""
    owned = select(Connection.id).where(Connection.username == username)
    query = _scoped(select(HelpdeskLink), scope).where(
        (HelpdeskLink.login_hint == username) | (HelpdeskLink.connection_id.in_(owned))
    )
    return list(db.scalars(query.order_by(HelpdeskLink.created_at.desc()).limit(limit)))


def _scoped(
    query: Select[tuple[HelpdeskLink]], scope: frozenset[str] | None
) -> Select[tuple[HelpdeskLink]]:
    """Limit a link query to the helpdesk scope."""
    if scope is None:
        return query
    tenants = sorted(scope)
    addressed = (
        HelpdeskLink.tenant.is_(None)
        | HelpdeskLink.tenant.in_(tenants)
        | HelpdeskLink.tenant.not_like(GUID_LIKE)
    )
    return query.where(HelpdeskLink.tenant_id.in_(tenants), addressed)
