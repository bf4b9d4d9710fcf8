"""`consent-portal jobs keep-alive | run`, plus the consent jobs: what cron or a timer runs."""

from __future__ import annotations

import click

from app.cli import consent
from app.cli import credentials
from app.cli import portal
from app.platform import extensions
from app.platform.extensions import db
from app.tokens import trail


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs (run them from cron or a systemd timer)."""


@jobs_group.command("keep-alive")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="Refresh connections idle this many days (PORTAL_KEEPALIVE_DAYS).",
)
def keep_alive(days: int | None) -> None:
    """Refresh idle connections; flag those that fail and e-mail their owners a reconnect link."""
    with portal.app_context():
        report = extensions.keepalive().run(db.session, days)
    click.echo(
        f"refreshed {len(report.refreshed)}, reauthentication required {len(report.flagged)}, "
        f"mailed {len(report.mailed)}, unavailable {len(report.unavailable)}"
    )
    if report.unavailable:
        raise SystemExit(75)  # EX_TEMPFAIL: cron mails the operator, the next run retries


@jobs_group.command("prune-trail")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="Keep this many days of the trail (PORTAL_ACCESS_TRAIL_DAYS).",
)
def prune_trail(days: int | None) -> None:
    """Delete access-trail rows older than PORTAL_ACCESS_TRAIL_DAYS."""
    with portal.app_context(IDENTITY_CHECK=False) as app:
        keep = days if days is not None else app.config["ACCESS_TRAIL_DAYS"]
        if keep < 1:  # --days is checked by its type; this is the configured value
            raise click.ClickException(f"PORTAL_ACCESS_TRAIL_DAYS is {keep}; it must be at least 1")
        count = trail.prune(db.session, keep)
    click.echo(f"pruned {count} access-trail row(s) older than {keep} day(s)")


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


jobs_group.add_command(consent.expire_requests_command)  # issue 4
jobs_group.add_command(consent.deliver_command)
jobs_group.add_command(credentials.credentials_command)  # issue 13: the portal's own
