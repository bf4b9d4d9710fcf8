"""What a consent request tells people: mails in text and HTML, and the one webhook payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.consent import records
from app.consent.records import STATUS_LABELS
from app.diagnosis.catalogue import APP_IN_ADMIN_CENTER
from app.diagnosis.catalogue import CONSENT_ROLES
from app.models import APPROVED
from app.models import DB
from app.models import DENIED
from app.models import ConsentRequest
from app.models import TenantConsent
from app.notify.deliveries import Notifier
from app.notify.senders import Mail
from app.notify.settings import NotifySettings

PORTAL = "Connector Consent Portal"


def status_url(public_url: str, request: ConsentRequest) -> str:
    """Return the absolute link to a request's status page."""
    return f"{public_url}/consent-requests/{request.id}"


def try_again_url(public_url: str, request: ConsentRequest) -> str:
    """Return the absolute Try again link that resumes the request's connector."""
    return f"{public_url}/consent-requests/{request.id}/try-again"


def to_admins(
    public_url: str,
    request: ConsentRequest,
    connector: str,
    requester: str,
    justification: str,
    admins: Sequence[str],
) -> list[Mail]:
    """Return the mails that tell a tenant's admins about a new request."""
    said = f'Their justification: "{justification}"' if justification else "No justification."
    lines = [
        f"{requester} asks you to approve {connector} for your organization in the {PORTAL}.",
        said,
        "Open the request to approve it (you grant consent at Microsoft) or deny it with a reason.",
        f"Microsoft accepts the approval from an account with one of these Microsoft Entra roles: "
        f"{', '.join(CONSENT_ROLES)}. You can also grant it in {APP_IN_ADMIN_CENTER} > "
        "Permissions > Grant admin consent, then press Approve on the request.",
    ]
    subject = f"Approval requested: {connector}"
    url = status_url(public_url, request)
    return [Mail.of(admin, subject, lines, url, "Open the request") for admin in admins]


def to_requesters(
    public_url: str, request: ConsentRequest, connector: str, requesters: Sequence[str]
) -> list[Mail]:
    """Return the mails that tell requesters their request was decided or expired."""
    status = STATUS_LABELS.get(request.status, request.status)
    subject = f"{connector}: your request is {status}"
    if request.status == APPROVED:
        lines = [
            f"An administrator approved {connector} for your organization.",
            f"Press Try again to connect {connector}; you will not need to ask again.",
        ]
        link, label = try_again_url(public_url, request), "Try again"
    elif request.status == DENIED:
        lines = [
            f"An administrator denied your request for {connector}.",
            f"Their reason: {request.reason or 'none given'}",
            "You can ask again from the request's page if things have changed.",
        ]
        link, label = status_url(public_url, request), "View the request"
    else:
        lines = [
            f"Your request for {connector} expired before an administrator decided on it.",
            "You can send a new request from the connector's page.",
        ]
        link, label = status_url(public_url, request), "View the request"
    return [Mail.of(to, subject, lines, link, label) for to in requesters]


def payload(db: DB, found: ConsentRequest, public_url: str) -> dict[str, Any]:
    """Return a request as webhook data, the same for every event (no justifications)."""
    return {
        "id": found.id,
        "tenant_id": found.tenant_id,
        "connector": found.connector,
        "scopes": found.scopes.split(),
        "status": found.status,
        "url": status_url(public_url, found),
        "decided_by": found.decided_by,
        "reason": found.reason,
        "requesters": [r.username for r in records.requesters(db, found.id)],
    }


def announce_new(
    db: DB,
    notifier: Notifier,
    public_url: str,
    found: ConsentRequest,
    connector: str,
    requester: str,
    justification: str,
) -> None:
    """Queue the created event and the mails to the tenant's known admins (the caller commits)."""
    admins = records.known_admins(db, found.tenant_id)
    mails = to_admins(public_url, found, connector, requester, justification, admins)
    notifier.queue(db, "consent_request.created", payload(db, found, public_url), mails)


def tell_requesters(
    db: DB, notifier: Notifier, public_url: str, found: ConsentRequest, connector: str
) -> None:
    """Queue the event and the requesters' mails for a decided or expired request."""
    people = records.requesters(db, found.id)
    mails = to_requesters(public_url, found, connector, [p.username for p in people])
    event = f"consent_request.{found.status}"  # approved, denied or expired
    notifier.queue(db, event, payload(db, found, public_url), mails)
    for person in people:
        person.notified_at = found.decided_at


def granted_payload(consent: TenantConsent) -> dict[str, Any]:
    """Return a tenant-wide consent as webhook data."""
    return {
        "tenant_id": consent.tenant_id,
        "connector": consent.connector,
        "scopes": consent.scopes.split(),
        "granted_by": consent.granted_by,
    }


@dataclass(frozen=True)
class Reach:
    """Who a tenant's new request reaches: the admins e-mailed, and the webhooks called."""

    mailed: int
    webhooks: int
    mails_requesters: bool  # SMTP is configured: requesters hear of the decision by mail

    @property
    def anyone(self) -> bool:
        """Tell whether anyone at all is told about a new request."""
        return bool(self.mailed or self.webhooks)


def reach(db: DB, settings: NotifySettings, tenant_id: str) -> Reach:
    """Return who announce_new tells about a request in this tenant, as configured now."""
    # Mail goes only to admins the portal has seen sign in, and only with SMTP configured.
    mailed = len(records.known_admins(db, tenant_id)) if settings.smtp_url else 0
    return Reach(mailed, len(settings.webhook_urls), bool(settings.smtp_url))
