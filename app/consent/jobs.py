"""Scheduled consent jobs: expire old requests (and tell their requesters), send deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from app.connectors import Connector
from app.consent import notices
from app.consent import records
from app.models import DB
from app.notify.deliveries import Notifier


def expire_requests(
    db: DB,
    notifier: Notifier,
    public_url: str,
    connectors: Mapping[str, Connector],
    now: datetime | None = None,
) -> int:
    """Expire every pending request past its date, queue the mails and webhooks; commit."""
    expired = records.expire_due(db, now=now)
    for found in expired:
        people = records.requesters(db, found.id)
        name = (
            connectors[found.connector].name if found.connector in connectors else found.connector
        )
        mails = notices.to_requesters(public_url, found, name, [p.username for p in people])
        data = {
            "id": found.id,
            "tenant_id": found.tenant_id,
            "connector": found.connector,
            "status": found.status,
            "url": notices.status_url(public_url, found),
            "requesters": [p.username for p in people],
        }
        notifier.queue(db, "consent_request.expired", data, mails)
        for person in people:
            person.notified_at = found.decided_at
    db.commit()
    return len(expired)
