"""Keep connections alive: refresh idle ones before Entra's 90-day inactivity limit bites."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from app.errors import PortalError
from app.errors import ReauthenticationRequired
from app.helpdesk import links
from app.models import ACTIVE
from app.models import Connection
from app.models import aware
from app.models import utcnow
from app.notify.senders import Mail
from app.platform import extensions
from app.platform.extensions import db

log = logging.getLogger(__name__)
INACTIVITY_LIMIT_DAYS = 90  # Entra's refresh tokens die after 90 days without use
NEAR_LIMIT_DAYS = 75
RECONNECT_LINK_DAYS = 7


@dataclass
class Report:
    """What one run of the job did."""

    refreshed: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    mailed: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


def idle_since(connection: Connection) -> datetime:
    """Return when the connection's refresh token was last used (or first issued)."""
    return aware(connection.last_refresh_at or connection.created_at)


def idle_days(connection: Connection, now: datetime | None = None) -> int:
    """Return whole days since the refresh token was last used."""
    return ((now or utcnow()) - idle_since(connection)).days


def near_limit(connection: Connection, now: datetime | None = None) -> bool:
    """Tell whether a live connection is close to the 90-day inactivity limit."""
    return connection.status == ACTIVE and idle_days(connection, now) >= NEAR_LIMIT_DAYS


def due(days: int, now: datetime | None = None) -> list[str]:
    """Return ids of live connections whose refresh token has been idle for `days` or more."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    query = select(Connection.id).where(
        Connection.status == ACTIVE,
        or_(
            Connection.last_refresh_at < cutoff,
            and_(Connection.last_refresh_at.is_(None), Connection.created_at < cutoff),
        ),
    )
    return list(db.session.scalars(query))


def run(days: int | None = None, now: datetime | None = None) -> Report:
    """Refresh every idle connection; flag and mail the owners of those that cannot refresh."""
    days = days if days is not None else int(current_app.config["KEEPALIVE_DAYS"])
    report = Report()
    broker = extensions.broker()
    for connection_id in due(days, now):
        try:
            broker.connection_token(connection_id, force_refresh=True)
        except ReauthenticationRequired:
            report.flagged.append(connection_id)  # the broker marked the row (C29)
            if reconnect_mail(connection_id, created_by="keep-alive job", background=False):
                report.mailed.append(connection_id)
        except PortalError as error:  # Entra or the database is down: try again next run
            log.warning("keep-alive: %s not refreshed (%s)", connection_id, error.code)
            report.unavailable.append(connection_id)
        else:
            report.refreshed.append(connection_id)
    links.audit("keep-alive job", "jobs.keep_alive", "-", **_counts(report))
    db.session.commit()
    return report


def reconnect_mail(connection_id: str, *, created_by: str, background: bool = True) -> str | None:
    """Create a reconnect link and e-mail it to the connection's owner; return the URL."""
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        return None
    made = links.create(
        kind=links.RECONNECT,
        created_by=created_by,
        tenant_id=connection.tenant_id,  # the job acts for the connection's own tenant
        scope=None,
        connection_id=connection.id,
        days=min(RECONNECT_LINK_DAYS, int(current_app.config["LINK_MAX_DAYS"])),
    )
    if not send_reconnect_mail(connection, made.url, background=background):
        return None
    return made.url


def send_reconnect_mail(connection: Connection, url: str, *, background: bool = True) -> bool:
    """Queue the reconnect mail and send it (now, or soon by the sender thread); False without SMTP.

    The app's notifier seals the mail (its link works) under the delivery's id and wipes it once
    sent, so the link never lies in the database in the clear.
    """
    notifier = extensions.notifier()
    if not notifier.settings.smtp_url or "@" not in connection.username:
        return False
    connector = extensions.connectors().get(connection.connector)
    context = {
        "connection": connection,
        "connector_name": connector.name if connector else connection.connector,
        "url": url,
        "contact": current_app.config.get("HELPDESK_CONTACT") or "",
    }
    mail = Mail(
        to=connection.username,
        subject=f"Reconnect {context['connector_name']} to keep your data tool working",
        text=_render("helpdesk/reconnect_mail.txt", context),
        html=_render("helpdesk/reconnect_mail.html", context),
    )
    data = {"connection_id": connection.id}
    # Mail only: the link in it must never reach a webhook receiver.
    notifier.queue(db.session, "connection.reconnect_link", data, [mail], webhooks=False)
    db.session.commit()
    if background:
        notifier.kick()
    else:
        notifier.run_due()
    return True


def _render(name: str, context: dict[str, Any]) -> str:
    """Render a mail template without the page globals (the job runs outside any request)."""
    return current_app.jinja_env.get_template(name).render(**context)


def _counts(report: Report) -> dict[str, str]:
    """Return the report's counts for the audit trail."""
    return {name: str(len(ids)) for name, ids in dataclasses.asdict(report).items()}
