"""Helpdesk sharing links: create, find by token, track, revoke (stored as an HMAC only)."""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

from flask import current_app
from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app import accounts
from app import extensions
from app import roles
from app.diagnosis import Diagnosis
from app.errors import EntraError
from app.extensions import db
from app.models import REVOKED
from app.models import AuditEvent
from app.models import Connection
from app.models import ConsentRequest
from app.models import HelpdeskLink
from app.models import LinkEvent
from app.models import aware
from app.models import iso
from app.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
AUTHENTICATE = "authenticate"
RECONNECT = "reconnect"
ADMIN_CONSENT = "admin_consent"
CONSENT_REQUEST = "consent_request"
KINDS = {
    AUTHENTICATE: "Authenticate a connector",
    RECONNECT: "Reconnect a connection",
    ADMIN_CONSENT: "Admin consent for a tenant",
    CONSENT_REQUEST: "Consent request status",
}
# Kinds that start a sign-in; the others only show a page, so they are never "used up".
FLOW_KINDS = frozenset({AUTHENTICATE, RECONNECT})
DEFAULT_DAYS = 7
MAX_TOKEN = 128  # our tokens are 43 characters; anything much longer is not ours
GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}")
DURATION = re.compile(r"(\d{1,4})\s*([dhw]?)")


class LinkRefused(ValueError):
    """A link cannot be created as asked; the message says why, for the form or the CLI."""


@dataclass(frozen=True)
class NewLink:
    """A link just created: the row and its URL, which is shown once and never stored."""

    link: HelpdeskLink
    url: str


def create(
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
    fields = _target(kind, connector, connection_id, consent_request_id, scope)
    hint = _login_hint(login_hint)
    if kind == RECONNECT:
        hint = None  # the connection's own account is the hint
    tenant = _tenant(tenant)
    if kind == ADMIN_CONSENT:
        tenant = _admin_tenant(tenant, scope)
    token = secrets.token_urlsafe(32)  # 256 bits from secrets (checklist principle 3)
    link = HelpdeskLink(
        token_hash=extensions.vault().hash_token(token),
        kind=kind,
        login_hint=hint,
        tenant=tenant,
        account_type=_account_type(account_type),
        note=(note or "").strip()[:500] or None,
        multi_use=bool(multi_use) or kind not in FLOW_KINDS,
        created_by=created_by[:320],
        tenant_id=tenant_id,
        created_at=utcnow(),
        expires_at=utcnow() + _lifetime(days),
        uses=0,
        **fields,
    )
    db.session.add(link)
    db.session.flush()
    audit(created_by, "link.created", link.id, kind=kind, expires_at=iso(link.expires_at) or "")
    db.session.commit()
    return NewLink(link, url_of(token))


def url_of(token: str) -> str:
    """Return the absolute URL of a link token, from PUBLIC_URL."""
    return f"{current_app.config['PUBLIC_URL']}/l/{token}"


def parse_days(text: str) -> float:
    """Return days from "7d", "36h", "2w" or "7"; raise LinkRefused otherwise."""
    match = DURATION.fullmatch((text or "").strip().lower())
    if not match:
        raise LinkRefused("Give the expiry as days (7d), hours (36h) or weeks (2w).")
    number, unit = int(match.group(1)), match.group(2) or "d"
    return {"h": number / 24, "d": number, "w": number * 7}[unit]


def find_usable(token: str) -> HelpdeskLink | None:
    """Return the link for a token if it can still be used; every failure looks the same."""
    digest = extensions.vault().hash_token(token[:MAX_TOKEN])  # always one HMAC and one query
    link = db.session.scalars(select(HelpdeskLink).where(HelpdeskLink.token_hash == digest)).first()
    if link is None or len(token) > MAX_TOKEN or not usable(link):
        return None
    return link


def usable(link: HelpdeskLink, now: datetime | None = None) -> bool:
    """Tell whether a link is neither revoked, expired nor used up."""
    now = now or utcnow()
    if link.revoked_at is not None or aware(link.expires_at) <= now:
        return False
    if link.kind in FLOW_KINDS and not link.multi_use and link.completed_at is not None:
        return False
    if link.kind == RECONNECT:
        connection = db.session.get(Connection, link.connection_id or "")
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


def opened(link: HelpdeskLink) -> None:
    """Note that someone opened the landing page."""
    link.opened_at = link.opened_at or utcnow()
    _event(link, "opened")
    db.session.commit()


def started(link: HelpdeskLink) -> None:
    """Note that the landing page sent someone to Microsoft."""
    _event(link, "started")
    audit("link", "link.used", link.id, kind=link.kind)
    db.session.commit()


def visible(link_id: str, scope: frozenset[str] | None) -> HelpdeskLink | None:
    """Return a link by id if it is within the helpdesk scope (else None, as if unknown)."""
    link = db.session.get(HelpdeskLink, link_id[:36])
    if link is None or not roles.in_scope(link.tenant_id, scope):
        return None
    return link


def revoke(link: HelpdeskLink, actor: str) -> None:
    """Revoke a link: from now on it gives the same page as one never issued."""
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        link.revoked_by = actor[:320]
        _event(link, "revoked", actor)
        audit(actor, "link.revoked", link.id, kind=link.kind)
        db.session.commit()


def recent(scope: frozenset[str] | None, limit: int = 50) -> list[HelpdeskLink]:
    """Return the newest links within the helpdesk scope (None: every tenant's)."""
    query = _scoped(select(HelpdeskLink), scope)
    return list(db.session.scalars(query.order_by(HelpdeskLink.created_at.desc()).limit(limit)))


def for_person(username: str, scope: frozenset[str] | None, limit: int = 20) -> list[HelpdeskLink]:
    """Return the links made for one person (by login hint or their connections), in scope."""
    owned = select(Connection.id).where(Connection.username == username)
    query = _scoped(select(HelpdeskLink), scope).where(
        (HelpdeskLink.login_hint == username) | (HelpdeskLink.connection_id.in_(owned))
    )
    return list(db.session.scalars(query.order_by(HelpdeskLink.created_at.desc()).limit(limit)))


def _scoped(
    query: Select[tuple[HelpdeskLink]], scope: frozenset[str] | None
) -> Select[tuple[HelpdeskLink]]:
    """Limit a link query to the helpdesk scope."""
    return query if scope is None else query.where(HelpdeskLink.tenant_id.in_(sorted(scope)))


def events(link: HelpdeskLink) -> list[LinkEvent]:
    """Return a link's events, oldest first."""
    query = select(LinkEvent).where(LinkEvent.link_id == link.id).order_by(LinkEvent.id)
    return list(db.session.scalars(query))


# -- hooks called where a flow ends ------------------------------------------------------------


def completed(purpose: Mapping[str, Any], response: T) -> T:
    """Mark the link that started this flow as completed, if one did; pass the response on."""
    link = _from_purpose(purpose)
    if link is not None:
        link.completed_at = utcnow()
        link.uses = (link.uses or 0) + 1
        _event(link, "completed")
        audit("link", "link.completed", link.id, kind=link.kind)
        _commit_quietly()
    return response


def failed(purpose: Mapping[str, Any], found: Diagnosis, error: EntraError) -> None:
    """Record a failed flow for the user lookup, and on the link that started it."""
    user = accounts.current_user() or {}
    person = str(user.get("username") or purpose.get("login_hint") or "unknown")
    code = (found.aadsts or error.error or "")[:64]
    connector = str(purpose.get("connector") or "-")[:64]
    detail = {"key": found.key[:64], "code": code, "link_id": str(purpose.get("link_id") or "")}
    audit(person, "flow.failed", connector, **detail)
    link = _from_purpose(purpose)
    if link is not None:
        link.failed_at = utcnow()
        link.failure_key = found.key[:64]
        link.failure_code = code or None
        _event(link, "failed", f"{found.key} {code}".strip())
    _commit_quietly()


def _commit_quietly() -> None:
    """Commit bookkeeping; a database hiccup here must never spoil the person's page."""
    try:
        db.session.commit()
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("link bookkeeping not stored: %s", type(error).__name__)


def _from_purpose(purpose: Mapping[str, Any]) -> HelpdeskLink | None:
    """Return the link named by a flow's purpose, if any."""
    link_id = purpose.get("link_id")
    return db.session.get(HelpdeskLink, str(link_id)) if link_id else None


# -- helpers ----------------------------------------------------------------------------------


def audit(actor: str, action: str, target: str, **detail: str) -> None:
    """Add an audit event to the request's session (the caller commits)."""
    db.session.add(
        AuditEvent(
            at=utcnow(), actor=actor[:320], action=action, target=target[:160], detail=detail
        )
    )


def _event(link: HelpdeskLink, event: str, detail: str = "") -> None:
    """Add a link event."""
    db.session.add(LinkEvent(link_id=link.id, at=utcnow(), event=event, detail=detail[:200]))


def _target(
    kind: str,
    connector: str | None,
    connection_id: str | None,
    request_id: str | None,
    scope: frozenset[str] | None,
) -> dict[str, Any]:
    """Return the columns naming what the link points at, checking it exists within scope."""
    known = extensions.connectors()
    if kind == RECONNECT:
        connection = db.session.get(Connection, (connection_id or "").strip()[:64])
        if (
            connection is None
            or connection.status == REVOKED
            or not roles.in_scope(connection.tenant_id, scope)
        ):
            raise LinkRefused("There is no live connection with that id.")
        return {"connection_id": connection.id, "connector": connection.connector}
    if kind == CONSENT_REQUEST:
        request_id = (request_id or "").strip()[:36]
        found = db.session.get(ConsentRequest, request_id) if request_id else None
        if found is None or not roles.in_scope(found.tenant_id, scope):
            raise LinkRefused("There is no consent request with that id.")
        return {"consent_request_id": request_id}
    if (connector or "") not in known:
        raise LinkRefused("Choose one of the connectors.")
    return {"connector": connector}


def _admin_tenant(tenant: str | None, scope: frozenset[str] | None) -> str | None:
    """Return the admin-consent link's tenant; a one-tenant helpdesk may only name its own."""
    if scope is None:
        return tenant
    if tenant is None and len(scope) == 1:
        return next(iter(scope))
    if tenant not in scope:
        raise LinkRefused(
            "An admin consent link can only be for your own organisation: leave the tenant "
            "empty or give your tenant id."
        )
    return tenant


def _login_hint(value: str | None) -> str | None:
    """Return a plausible e-mail address, None when empty, or refuse."""
    hint = (value or "").strip()
    if not hint:
        return None
    if len(hint) > 254 or "@" not in hint or any(ch.isspace() or ord(ch) < 32 for ch in hint):
        raise LinkRefused("The login hint must be an e-mail address such as user@contoso.com.")
    return hint


def _tenant(value: str | None) -> str | None:
    """Return a tenant id or domain, None when empty, or refuse."""
    tenant = (value or "").strip().lower()
    if not tenant:
        return None
    if not (GUID.fullmatch(tenant) or DOMAIN.fullmatch(tenant)):
        raise LinkRefused("The tenant must be a domain such as contoso.com or a tenant id.")
    return tenant


def _account_type(value: str | None) -> str | None:
    """Return work, personal or None."""
    if value in (None, "", "any"):
        return None
    if value not in ("work", "personal"):
        raise LinkRefused("The account type must be work or personal.")
    return value


def _lifetime(days: float) -> timedelta:
    """Return the link's lifetime, refusing anything beyond PORTAL_LINK_MAX_DAYS."""
    most = int(current_app.config.get("LINK_MAX_DAYS") or 30)
    if not math.isfinite(days):  # nan passes every comparison below; inf breaks timedelta
        raise LinkRefused("The lifetime must be a number of days.")
    if not days or days <= 0:
        raise LinkRefused("A link must live for some time.")
    if days > most:
        raise LinkRefused(f"A link can live at most {most} days.")
    return timedelta(days=days)


def is_tenant_id(value: str | None) -> bool:
    """Tell whether a tenant value is a GUID (used as the authority) rather than a domain."""
    return bool(value and GUID.fullmatch(value))
