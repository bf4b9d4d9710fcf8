"""An admin's decisions: deny a request, or record a tenant-wide consent Entra has confirmed."""

from __future__ import annotations

from dataclasses import dataclass

from app.connectors import Connector
from app.consent import notices
from app.consent import records
from app.models import DB
from app.models import ConsentRequest
from app.models import TenantConsent
from app.notify.deliveries import Notifier


@dataclass(frozen=True)
class Granted:
    """A consent just recorded, and the request it settled (None when none was pending)."""

    consent: TenantConsent
    request: ConsentRequest | None


def deny(
    db: DB,
    notifier: Notifier,
    public_url: str,
    found: ConsentRequest,
    connector: Connector,
    admin: str,
    reason: str,
) -> bool:
    """Deny a pending request and tell its requesters; False when another admin was first."""
    if not records.deny(db, found, admin, reason):
        db.rollback()
        return False
    notices.tell_requesters(db, notifier, public_url, found, connector.name)
    db.commit()
    notifier.kick()
    return True


def grant(
    db: DB,
    notifier: Notifier,
    public_url: str,
    tenant_id: str,
    connector: Connector,
    admin: str,
) -> Granted:
    """Record a confirmed tenant-wide consent, approve the pending request, tell everyone."""
    done = records.record_tenant_consent(db, tenant_id, connector.id, connector.scopes, admin)
    notifier.queue(db, "tenant_consent.granted", notices.granted_payload(done))
    found = records.pending_for(db, tenant_id, connector.id)
    # The consent is real at Entra whatever happened meanwhile; a request still pending (the one
    # approved, or one a proactive grant also settles) is approved once, by whoever is first.
    if found is not None and records.approve(db, found, admin):
        notices.tell_requesters(db, notifier, public_url, found, connector.name)
    db.commit()
    notifier.kick()
    return Granted(done, found)
