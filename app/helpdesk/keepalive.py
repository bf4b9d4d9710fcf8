"""Keep connections alive: refresh idle ones before Entra's 90-day inactivity limit bites."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select

from app.errors import PortalError
from app.errors import ReauthenticationRequired
from app.helpdesk import link_events
from app.helpdesk.link_fields import RECONNECT
from app.helpdesk.links import Links
from app.models import ACTIVE
from app.models import DB
from app.models import Connection
from app.models import aware
from app.models import utcnow
from app.notify.deliveries import Notifier
from app.notify.senders import Mail
from app.tokens.broker import Broker

log = logging.getLogger(__name__)
INACTIVITY_LIMIT_DAYS = 90  # Entra's refresh tokens die after 90 days without use
NEAR_LIMIT_DAYS = 75
RECONNECT_LINK_DAYS = 7
# Set while the job refreshes: a refusal then gets the job's reconnect mail, not a second one.
MAILS_THE_OWNER: ContextVar[bool] = ContextVar("keep_alive_mails_the_owner", default=False)


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


def due(db: DB, days: int, now: datetime | None = None) -> list[str]:
    """Return ids of live connections whose refresh token has been idle for `days` or more."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    query = select(Connection.id).where(
        Connection.status == ACTIVE,
        or_(
            Connection.last_refresh_at < cutoff,
            and_(Connection.last_refresh_at.is_(None), Connection.created_at < cutoff),
        ),
    )
    return list(db.scalars(query))


class KeepAlive:
    """The keep-alive job and the reconnect mail, with the services and settings they use."""

    def __init__(
        self,
        *,
        broker: Broker,
        links: Links,
        notifier: Notifier,
        render: Callable[[str, dict[str, Any]], str],
        days: int = 14,
        contact: str = "",
    ) -> None:
        self._broker = broker
        self._links = links
        self._notifier = notifier
        self._render = render  # a mail template by name, rendered outside any request
        self.days = days
        self._contact = contact

    def run(self, db: DB, days: int | None = None, now: datetime | None = None) -> Report:
        """Refresh every idle connection; flag and mail the owners of those that cannot refresh."""
        report = Report()
        for connection_id in due(db, days if days is not None else self.days, now):
            told = MAILS_THE_OWNER.set(True)  # its own mail, with a link, tells the owner
            try:
                self._broker.connection_token(connection_id, force_refresh=True)
            except ReauthenticationRequired:
                report.flagged.append(connection_id)  # the broker marked the row (C29)
                mailed = self.reconnect_mail(
                    db, connection_id, created_by="keep-alive job", background=False
                )
                if mailed:
                    report.mailed.append(connection_id)
            except PortalError as error:  # Entra or the database is down: try again next run
                log.warning("keep-alive: %s not refreshed (%s)", connection_id, error.code)
                report.unavailable.append(connection_id)
            else:
                report.refreshed.append(connection_id)
            finally:
                MAILS_THE_OWNER.reset(told)
        link_events.audit(db, "keep-alive job", "jobs.keep_alive", "-", **_counts(report))
        db.commit()
        return report

    def reconnect_mail(
        self, db: DB, connection_id: str, *, created_by: str, background: bool = True
    ) -> str | None:
        """Create a reconnect link and e-mail it to the connection's owner; return the URL."""
        connection = db.get(Connection, connection_id)
        if connection is None:
            return None
        made = self._links.create(
            db,
            kind=RECONNECT,
            created_by=created_by,
            tenant_id=connection.tenant_id,  # the job acts for the connection's own tenant
            scope=None,
            connection_id=connection.id,
            days=min(RECONNECT_LINK_DAYS, self._links.max_days),
        )
        if not self.send_reconnect_mail(db, connection, made.url, background=background):
            return None
        return made.url

    def send_reconnect_mail(
        self, db: DB, connection: Connection, url: str, *, background: bool = True
    ) -> bool:
        """Queue the reconnect mail and send it, now or soon; False without SMTP or an address.

        The notifier seals the mail (its link works) under the delivery's id and wipes it once
        sent, so the link never lies in the database in the clear.
        """
        if not self._notifier.settings.smtp_url or "@" not in connection.username:
            return False
        connector = self._links.connectors.get(connection.connector)
        context = {
            "connection": connection,
            "connector_name": connector.name if connector else connection.connector,
            "url": url,
            "contact": self._contact,
        }
        mail = Mail(
            to=connection.username,
            subject=f"Reconnect {context['connector_name']} to keep your data tool working",
            text=self._render("helpdesk/reconnect_mail.txt", context),
            html=self._render("helpdesk/reconnect_mail.html", context),
        )
        data = {"connection_id": connection.id}
        # Mail only: the link in it must never reach a webhook receiver.
        self._notifier.queue(db, "connection.reconnect_link", data, [mail], webhooks=False)
        db.commit()
        if background:
            self._notifier.kick()
        else:
            self._notifier.run_due()
        return True


def _counts(report: Report) -> dict[str, str]:
    """Return the report's counts for the audit trail."""
    return {name: str(len(ids)) for name, ids in dataclasses.asdict(report).items()}
