"""`consent-portal jobs credentials`: the portal's own secrets and certificates, and reminders.

Lists each credential with its end (from the certificate, PORTAL_CLIENT_SECRETS_EXPIRES or Graph)
and mails the operators (PORTAL_OPERATOR_EMAILS) once at 30, 7 and 1 days before it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import click

from app.cli import portal
from app.identity import credentials
from app.platform import extensions


@click.command("credentials")
def credentials_command() -> None:
    """Show the portal's client credentials and their expiry; mail the reminders that are due."""
    with portal.app_context(IDENTITY_CHECK=False):  # Graph is asked only when it can be
        now = datetime.now(UTC)
        rows = extensions.identity().credential_status()
        for row in rows:
            credential: credentials.ClientCredential = row["credential"]
            end = f"{credential.expires_at:%Y-%m-%d}" if credential.expires_at else "unknown"
            source = f" ({credential.expiry_source})" if credential.expiry_source else ""
            used = " in use" if row["in_use"] else ""
            click.echo(f"{credential.label}: expires {end}{source}{used}")
        listed = [row["credential"] for row in rows]
        sent = extensions.credential_alerts().remind(extensions.db.session, listed, now)
        delivered = extensions.notifier().run_due()
    for line in credentials.warnings(rows, now):
        click.echo(f"warning: {line}")
    click.echo(f"reminders queued {len(sent)}, attempted {delivered} delivery(ies)")
