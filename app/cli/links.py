"""`consent-portal links create | list | revoke`: helpdesk sharing links from a shell."""

from __future__ import annotations

import getpass
from collections.abc import Mapping

import click

from app.cli import portal
from app.errors import LinkRefused
from app.helpdesk import link_fields
from app.helpdesk import links
from app.models import HelpdeskLink
from app.models import aware
from app.platform import extensions
from app.platform.extensions import db

KIND_CHOICES = {"authenticate", "reconnect", "admin-consent", "consent-request"}
# The form field a refusal names -> the option that gave it, so the message can quote both.
OPTIONS = {
    "connector": "--connector",
    "login_hint": "--login-hint",
    "tenant": "--tenant",
    "account_type": "--account-type",
    "connection_id": "--connection",
    "consent_request_id": "--request",
    "days": "--expires",
}
NEEDS_CONNECTOR = {"authenticate", "admin-consent"}


@click.group("links")
def links_group() -> None:
    """Create, list and revoke helpdesk sharing links."""


@links_group.command("create")
@click.option(
    "--kind",
    type=click.Choice(sorted(KIND_CHOICES)),
    default="authenticate",
    show_default=True,
    help="What the link does.",
)
@click.option("--connector", help="Connector id (authenticate, admin-consent).")
@click.option("--login-hint", help="The person's e-mail address, pre-filled at sign-in.")
@click.option("--tenant", help="Tenant domain or id (a domain hint, or the admin's tenant).")
@click.option(
    "--account-type",
    type=click.Choice(["work", "personal"]),
    help="Only this kind of Microsoft account may sign in (default: either).",
)
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
    given = {
        "connector": connector,
        "login_hint": login_hint,
        "tenant": tenant,
        "account_type": account_type,
        "connection_id": connection_id,
        "consent_request_id": request_id,
        "days": expires,
    }
    with portal.app_context(IDENTITY_CHECK=False):
        # Not click.Choice: the connectors come from the settings (one per Dynamics org).
        if kind in NEEDS_CONNECTOR:
            check_connector(connector, extensions.connectors())
        try:
            made = extensions.links().create(
                db.session,
                kind=kind.replace("-", "_"),
                created_by=f"cli:{os_user()}",
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
        except LinkRefused as refused:
            raise refusal(refused, given) from None
        click.echo(made.url)
        expiry = aware(made.link.expires_at).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"link {made.link.id}, expires {expiry}", err=True)


@links_group.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many links to list, newest first.",
)
def links_list(limit: int) -> None:
    """List the newest links with their status."""
    with portal.app_context(IDENTITY_CHECK=False):
        for link in links.recent(db.session, None, limit):
            target = link.connector or link.connection_id or link.consent_request_id or "-"
            who = link.login_hint or "-"
            expiry = aware(link.expires_at).strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"{link.id}  {link.kind:<15} {target:<14} {who:<28} "
                f"{links.status(link):<10} expires {expiry}  by {link.created_by}"
            )


@links_group.command("revoke")
@click.argument("link_id", metavar="LINK_ID")
def links_revoke(link_id: str) -> None:
    """Revoke a link: it then gives the same page as one never issued."""
    with portal.app_context(IDENTITY_CHECK=False):
        link = db.session.get(HelpdeskLink, link_id[:36])
        if link is None:
            raise click.BadParameter(
                f"there is no link {link_id!r}; `consent-portal links list` shows the links",
                param_hint="'LINK_ID'",
            )
        links.revoke(db.session, link, f"cli:{os_user()}")
        click.echo(f"link {link.id} revoked")


def check_connector(connector: str | None, known: Mapping[str, object]) -> None:
    """Refuse a connector this deployment does not have, naming it and the ones it has."""
    if connector in known:
        return
    choices = ", ".join(sorted(known))
    if connector is None:
        raise click.UsageError(f"Missing option '--connector': choose one of: {choices}")
    raise click.BadParameter(
        f"{connector!r} is not a connector; choose one of: {choices}", param_hint="'--connector'"
    )


def refusal(refused: LinkRefused, given: Mapping[str, str | None]) -> click.UsageError:
    """Return the refusal as a usage error that names the option and the value it was given."""
    option = OPTIONS.get(refused.field or "")
    if option is None:
        return click.UsageError(str(refused))
    value = given.get(refused.field or "")
    if value is None:
        return click.UsageError(f"Missing option '{option}': {refused}")
    return click.BadParameter(f"{value!r} is refused: {refused}", param_hint=f"'{option}'")


def os_user() -> str:
    """Return the operating-system user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
