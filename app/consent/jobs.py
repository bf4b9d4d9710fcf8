"""Scheduled consent jobs: expire old requests (and tell their requesters), send deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import click

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


@click.command("expire-requests")
def expire_requests_command() -> None:
    """Mark consent requests past PORTAL_CONSENT_REQUEST_DAYS as Expired and tell requesters."""
    from app import create_app
    from app.platform import extensions

    app = create_app()
    with app.app_context():
        count = expire_requests(
            extensions.db.session,
            extensions.notifier(),
            app.config["PUBLIC_URL"],
            extensions.connectors(),
        )
        sent = extensions.notifier().run_due()
    click.echo(f"expired {count} request(s), attempted {sent} delivery(ies)")


@click.command("deliver")
def deliver_command() -> None:
    """Send the notifications that are due (webhooks and e-mail), retrying failed ones."""
    from app import create_app
    from app.platform import extensions

    app = create_app()
    with app.app_context():
        sent = extensions.notifier().run_due()
    click.echo(f"attempted {sent} delivery(ies)")
