"""consent-portal links … and jobs …: helpdesk links and the keep-alive job from a shell."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask import current_app
from flask import has_app_context
from flask.cli import ScriptInfo

from app.helpdesk import link_fields
from app.helpdesk import links
from app.models import HelpdeskLink
from app.models import aware
from app.platform import extensions
from app.platform.extensions import db

KIND_CHOICES = {"authenticate", "reconnect", "admin-consent", "consent-request"}


@contextmanager
def _portal() -> Iterator[Flask]:
    """Use the running Flask app (flask --app), or build one on the instance folder's state."""
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    from app import create_app

    info = click.get_current_context().find_object(ScriptInfo)  # flask --app, test runners
    app = info.load_app() if info is not None else create_app()
    with app.app_context(), app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        yield app


@click.group("links")
def links_group() -> None:
    """Create, list and revoke helpdesk sharing links."""


@links_group.command("create")
@click.option("--kind", type=click.Choice(sorted(KIND_CHOICES)), default="authenticate")
@click.option("--connector", help="Connector id (authenticate, admin-consent).")
@click.option("--login-hint", help="The person's e-mail address, pre-filled at sign-in.")
@click.option("--tenant", help="Tenant domain or id (a domain hint, or the admin's tenant).")
@click.option("--account-type", type=click.Choice(["work", "personal"]))
@click.option("--connection", "connection_id", help="Connection id (reconnect).")
@click.option("--request", "request_id", help="Consent request id (consent-request).")
@click.option("--expires", default="7d", show_default=True, help="Lifetime: 7d, 36h or 2w.")
@click.option("--multi-use", is_flag=True, help="Allow more than one completed sign-in.")
@click.option("--note", help="A note for the helpdesk (a ticket number); not shown to the user.")
def links_create(
    kind: str,
    connector: str | None,
    login_hint: str | None,
    tenant: str | None,
    account_type: str | None,
    connection_id: str | None,
    request_id: str | None,
    expires: str,
    multi_use: bool,
    note: str | None,
) -> None:
    """Create a link and print its URL (shown once: only its HMAC is stored)."""
    with _portal():
        try:
            made = extensions.links().create(
                db.session,
                kind=kind.replace("-", "_"),
                created_by=f"cli:{_os_user()}",
                tenant_id=None,  # the operator's link: only the all-tenant helpdesk sees it
                scope=None,
                connector=connector,
                login_hint=login_hint,
                tenant=tenant,
                account_type=account_type,
                connection_id=connection_id,
                consent_request_id=request_id,
                days=link_fields.parse_days(expires),
                multi_use=multi_use,
                note=note,
            )
        except link_fields.LinkRefused as refused:
            raise click.UsageError(str(refused)) from None
        click.echo(made.url)
        expiry = aware(made.link.expires_at).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"link {made.link.id}, expires {expiry}", err=True)


@links_group.command("list")
@click.option("--limit", default=50, show_default=True)
def links_list(limit: int) -> None:
    """List the newest links with their status."""
    with _portal():
        for link in links.recent(db.session, None, limit):
            target = link.connector or link.connection_id or link.consent_request_id or "-"
            who = link.login_hint or "-"
            expiry = aware(link.expires_at).strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"{link.id}  {link.kind:<15} {target:<14} {who:<28} "
                f"{links.status(link):<10} expires {expiry}  by {link.created_by}"
            )


@links_group.command("revoke")
@click.argument("link_id")
def links_revoke(link_id: str) -> None:
    """Revoke a link: it then gives the same page as one never issued."""
    with _portal():
        link = db.session.get(HelpdeskLink, link_id[:36])
        if link is None:
            raise click.ClickException(f"no link {link_id}")
        links.revoke(db.session, link, f"cli:{_os_user()}")
        click.echo(f"link {link.id} revoked")


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs (run them from cron or a systemd timer)."""


@jobs_group.command("keep-alive")
@click.option(
    "--days", type=int, help="Refresh connections idle this long (PORTAL_KEEPALIVE_DAYS)."
)
def keep_alive(days: int | None) -> None:
    """Refresh idle connections; flag those that fail and e-mail their owners a reconnect link."""
    with _portal():
        report = extensions.keepalive().run(db.session, days)
    click.echo(
        f"refreshed {len(report.refreshed)}, reauthentication required {len(report.flagged)}, "
        f"mailed {len(report.mailed)}, unavailable {len(report.unavailable)}"
    )
    if report.unavailable:
        raise SystemExit(75)  # EX_TEMPFAIL: cron mails the operator, the next run retries


def _os_user() -> str:
    """Return the operating-system user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@jobs_group.command("run")
@click.pass_context
def run_all(ctx: click.Context) -> None:
    """Run every scheduled job once (what cron or the systemd timer calls)."""
    worst = 0
    for name, command in sorted(jobs_group.commands.items()):
        if name == "run":
            continue
        click.echo(f"{name}: ", nl=False)
        try:
            ctx.invoke(command)
        except SystemExit as stop:  # one failing job must not keep the others from running
            worst = max(worst, int(stop.code or 0))
    if worst:
        raise SystemExit(worst)
