"""`consent-portal jobs expire-requests | deliver`: the consent jobs from a shell.

Neither signs anyone in, so they run without an identity provider (IDENTITY_CHECK=False).
"""

from __future__ import annotations

import click

from app.cli import portal
from app.consent import jobs
from app.platform import extensions


@click.command("expire-requests")
def expire_requests_command() -> None:
    """Mark consent requests past PORTAL_CONSENT_REQUEST_DAYS as Expired and tell requesters."""
    with portal.app_context(IDENTITY_CHECK=False) as app:
        count = jobs.expire_requests(
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
    with portal.app_context(IDENTITY_CHECK=False):
        sent = extensions.notifier().run_due()
    click.echo(f"attempted {sent} delivery(ies)")
