"""consent-portal jobs expire-requests | deliver: the consent jobs from a shell."""

from __future__ import annotations

import click

from app.consent import jobs


@click.command("expire-requests")
def expire_requests_command() -> None:
    """Mark consent requests past PORTAL_CONSENT_REQUEST_DAYS as Expired and tell requesters."""
    from app import create_app
    from app.platform import extensions

    app = create_app()
    with app.app_context():
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
    from app import create_app
    from app.platform import extensions

    app = create_app()
    with app.app_context():
        sent = extensions.notifier().run_due()
    click.echo(f"attempted {sent} delivery(ies)")
