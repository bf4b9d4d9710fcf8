"""Scheduled consent jobs: expire old requests and tell their requesters."""

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
        known = connectors.get(found.connector)
        name = known.name if known else found.connector
        notices.tell_requesters(db, notifier, public_url, found, name)
    db.commit()
    return len(expired)
