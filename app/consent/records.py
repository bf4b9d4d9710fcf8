"""Consent requests and tenant-wide consents: create or join, decide, expire; Flask-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.errors import AlreadyDecided
from app.errors import NotFound
from app.models import APPROVED
from app.models import DB
from app.models import DENIED
from app.models import EXPIRED
from app.models import PENDING
from app.models import AuditEvent
from app.models import ConsentRequest
from app.models import ConsentRequester
from app.models import KnownAdmin
from app.models import TenantConsent
from app.models import utcnow

STATUS_LABELS = {PENDING: "Pending", APPROVED: "Approved", DENIED: "Denied", EXPIRED: "Expired"}
MAX_JUSTIFICATION = 1000
MAX_REASON = 1000


@dataclass(frozen=True)
class Requester:
    """The person asking: who they are and why."""

    oid: str
    username: str
    tenant_id: str
    justification: str = ""


def open_request(
    db: DB, who: Requester, connector: str, scopes: Sequence[str], days: int
) -> tuple[ConsentRequest, bool]:
    """Join the open request for this tenant and connector, or create it; True when new."""
    for _ in range(3):  # two first requesters at once: the unique index picks one
        expire_due(db, tenant_id=who.tenant_id, connector=connector)
        found = pending_for(db, who.tenant_id, connector)
        created = found is None
        if found is None:
            now = utcnow()
            found = ConsentRequest(
                tenant_id=who.tenant_id,
                connector=connector,
                scopes=" ".join(scopes),
                status=PENDING,
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
            db.add(found)
        try:
            _add_requester(db, found, who)
            db.flush()
        except IntegrityError:
            db.rollback()
            continue
        if created:
            db.add(audit(who.username, "consent_request.created", found.id, connector=connector))
        return found, created
    raise RuntimeError("could not open a consent request")


def _add_requester(db: DB, request: ConsentRequest, who: Requester) -> None:
    """Add a requester once; a second request by the same person updates the justification."""
    db.flush()
    existing = db.scalars(
        select(ConsentRequester).where(
            ConsentRequester.request_id == request.id, ConsentRequester.oid == who.oid
        )
    ).first()
    text = who.justification.strip()[:MAX_JUSTIFICATION]
    if existing is None:
        db.add(
            ConsentRequester(
                request_id=request.id,
                oid=who.oid,
                username=who.username,
                justification=text,
                requested_at=utcnow(),
            )
        )
    elif text:
        existing.justification = text


def pending_for(db: DB, tenant_id: str, connector: str) -> ConsentRequest | None:
    """Return the open request for a tenant and connector, if any."""
    return db.scalars(
        select(ConsentRequest).where(
            ConsentRequest.tenant_id == tenant_id,
            ConsentRequest.connector == connector,
            ConsentRequest.status == PENDING,
        )
    ).first()


def requesters(db: DB, request_id: str) -> list[ConsentRequester]:
    """Return the people who asked, first one first."""
    return list(
        db.scalars(
            select(ConsentRequester)
            .where(ConsentRequester.request_id == request_id)
            .order_by(ConsentRequester.requested_at, ConsentRequester.id)
        )
    )


def of_requester(
    db: DB, tenant_id: str, oid: str, *, pending_only: bool = False
) -> list[ConsentRequest]:
    """Return the requests this person sent or joined in their tenant, newest first."""
    query = (
        select(ConsentRequest)
        .join(ConsentRequester, ConsentRequester.request_id == ConsentRequest.id)
        .where(ConsentRequest.tenant_id == tenant_id, ConsentRequester.oid == oid)
        .order_by(ConsentRequest.created_at.desc(), ConsentRequest.id)
    )
    if pending_only:  # read-only: a request past its expiry is not pending, marked or not
        query = query.where(ConsentRequest.status == PENDING, ConsentRequest.expires_at > utcnow())
    return list(db.scalars(query))


def pending_in(db: DB, tenant_id: str) -> list[ConsentRequest]:
    """Return a tenant's open requests, oldest first."""
    expire_due(db, tenant_id=tenant_id)
    return list(
        db.scalars(
            select(ConsentRequest)
            .where(ConsentRequest.tenant_id == tenant_id, ConsentRequest.status == PENDING)
            .order_by(ConsentRequest.created_at)
        )
    )


def deny(db: DB, request: ConsentRequest, admin: str, reason: str) -> bool:
    """Record a denial with its reason; False when another decision got there first."""
    if not _decide(db, request, DENIED, admin, reason.strip()[:MAX_REASON]):
        return False
    db.add(audit(admin, "consent_request.denied", request.id, reason=request.reason or ""))
    return True


def approve(db: DB, request: ConsentRequest, admin: str) -> bool:
    """Mark a request approved (after the consent was confirmed); False if already decided."""
    if not _decide(db, request, APPROVED, admin, None):
        return False
    db.add(audit(admin, "consent_request.approved", request.id, connector=request.connector))
    return True


def _decide(db: DB, request: ConsentRequest, status: str, admin: str, reason: str | None) -> bool:
    """Close a pending request in one conditional UPDATE, so two admins never both decide it."""
    done = db.execute(
        update(ConsentRequest)
        .where(ConsentRequest.id == request.id, ConsentRequest.status == PENDING)
        .values(status=status, decided_by=admin[:320], decided_at=utcnow(), reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    db.refresh(request)
    return bool(getattr(done, "rowcount", 0) == 1)


def expire_due(
    db: DB,
    now: datetime | None = None,
    tenant_id: str | None = None,
    connector: str | None = None,
) -> list[ConsentRequest]:
    """Mark pending requests past their expiry as expired and return them."""
    query = select(ConsentRequest).where(
        ConsentRequest.status == PENDING, ConsentRequest.expires_at <= (now or utcnow())
    )
    if tenant_id is not None:
        query = query.where(ConsentRequest.tenant_id == tenant_id)
    if connector is not None:
        query = query.where(ConsentRequest.connector == connector)
    expired = list(db.scalars(query))
    for request in expired:
        request.status = EXPIRED
        request.decided_by = "portal"
        request.decided_at = now or utcnow()
        db.add(audit("portal", "consent_request.expired", request.id))
    return expired


def record_tenant_consent(
    db: DB, tenant_id: str, connector: str, scopes: Sequence[str], admin: str
) -> TenantConsent:
    """Store a confirmed tenant-wide consent for a connector (replacing an older one)."""
    found = db.scalars(
        select(TenantConsent).where(
            TenantConsent.tenant_id == tenant_id, TenantConsent.connector == connector
        )
    ).first()
    if found is None:
        found = TenantConsent(tenant_id=tenant_id, connector=connector)
        db.add(found)
    found.scopes = " ".join(scopes)
    found.granted_by = admin[:320]
    found.granted_at = utcnow()
    found.confirmed = True
    db.add(audit(admin, "tenant_consent.granted", f"{tenant_id}/{connector}"[:160]))
    return found


def tenant_consents(db: DB, tenant_id: str) -> dict[str, TenantConsent]:
    """Return a tenant's recorded consents by connector id."""
    rows = db.scalars(select(TenantConsent).where(TenantConsent.tenant_id == tenant_id))
    return {row.connector: row for row in rows}


def remember_admin(db: DB, tenant_id: str, username: str) -> None:
    """Note an administrator of a tenant, so new requests reach them by e-mail."""
    found = db.get(KnownAdmin, (tenant_id, username.lower()))
    if found is None:
        db.add(KnownAdmin(tenant_id=tenant_id, username=username.lower(), last_seen_at=utcnow()))
    else:
        found.last_seen_at = utcnow()


def known_admins(db: DB, tenant_id: str) -> list[str]:
    """Return the usernames of a tenant's known administrators."""
    query = select(KnownAdmin.username).where(KnownAdmin.tenant_id == tenant_id)
    return sorted(db.scalars(query))


def audit(actor: str, action: str, target: str, **detail: Any) -> AuditEvent:
    """Return an audit event row for a consent decision."""
    return AuditEvent(at=utcnow(), actor=actor[:320], action=action, target=target, detail=detail)


def own_pending(db: DB, request_id: str, tenant_id: str) -> ConsentRequest:
    """Return a pending request of this tenant; NotFound for any other, AlreadyDecided if closed."""
    found = db.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    if found is None or found.tenant_id != tenant_id:
        raise NotFound()
    if found.status != PENDING:
        raise AlreadyDecided()
    return found


def approved(db: DB, request_id: str) -> ConsentRequest:
    """Return an approved request (its Try again page), or raise NotFound."""
    found = db.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    if found is None or found.status != APPROVED:
        raise NotFound()
    return found
