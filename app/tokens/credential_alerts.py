"""Telling the operators about the portal's own credentials: one refused, one about to expire.

A refusal is logged, counted and mailed when the ring moves on (once per credential per process;
the audit row keeps several workers from mailing the same news within a day). Reminders go out
from the `jobs credentials` run at 30, 7 and 1 days before an end, once each: the audit row of
each reminder is what the next run checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity.credentials import REMINDER_DAYS
from app.identity.credentials import ClientCredential
from app.models import DB
from app.models import AuditEvent
from app.models import utcnow
from app.notify.deliveries import Notifier
from app.notify.senders import Mail

log = logging.getLogger(__name__)
REFUSED = "client_credential.refused"
EXPIRING = "client_credential.expiring"
ACTOR = "portal"
REFUSAL_QUIET = timedelta(days=1)  # other workers finding the same refusal stay quiet this long
WHERE = (
    "Microsoft Entra admin center > Identity > Applications > App registrations > the portal's "
    "app > Certificates & secrets"
)


@dataclass
class CredentialAlerts:
    """Writes the audit rows and queues the operators' mails and the webhook events."""

    sessions: Callable[[], Session]
    notifier: Notifier
    operators: Sequence[str]
    public_url: str
    counted: Callable[[ClientCredential, int], None] | None = None  # the metrics hook

    def refused(
        self, credential: ClientCredential, code: int, chosen: ClientCredential | None
    ) -> None:
        """Raise the alert for a credential Entra refused: log, metric, audit row, mail."""
        now_using = chosen.label if chosen else "none: sign-ins and refreshes fail"
        log.error("Entra refused %s (AADSTS%d); now using %s", credential.label, code, now_using)
        if self.counted is not None:
            self.counted(credential, code)
        detail = _describe(credential) | {"aadsts": code, "now_using": now_using}
        with self.sessions() as db, db.begin():
            if _recent(db, REFUSED, credential, utcnow() - REFUSAL_QUIET):
                return
            db.add(_event(REFUSED, credential, detail))
            subject = f"Portal credential refused: {credential.label} (AADSTS{code})"
            lines = [
                f"Microsoft Entra ID refused the portal's {credential.label} with AADSTS{code}.",
                f"The portal now uses: {now_using}.",
                f"Replace it: add a new one in {WHERE}, put it first in "
                "PORTAL_CLIENT_SECRETS (or PORTAL_CLIENT_CERTIFICATES), restart the portal, "
                "then remove the refused one from the settings and from Entra.",
            ]
            self.notifier.queue(db, REFUSED, detail, self._mails(subject, lines))
        self.notifier.kick()

    def remind(self, db: DB, credentials: Sequence[ClientCredential], now: datetime) -> list[str]:
        """Queue the 30-, 7- and 1-day reminders that are due and not yet sent; return them."""
        sent = []
        for credential in credentials:
            days = credential.days_left(now)
            due = [d for d in REMINDER_DAYS if days is not None and days <= d]
            if not due or credential.expires_at is None:
                continue
            threshold = min(due)
            if _reminded(db, credential, threshold):
                continue
            detail = _describe(credential) | {"days": threshold}
            db.add(_event(EXPIRING, credential, detail))
            self.notifier.queue(db, EXPIRING, detail, self._reminder(credential, days or 0.0))
            sent.append(f"{credential.label}: {threshold}-day reminder")
        db.commit()
        if sent:
            self.notifier.kick()
        return sent

    def _reminder(self, credential: ClientCredential, days: float) -> list[Mail]:
        """Return the operators' mails for one credential nearing its end."""
        end = credential.expires_at.strftime("%Y-%m-%d %H:%M UTC") if credential.expires_at else ""
        when = f"expired on {end}" if days <= 0 else f"expires on {end} ({_days(days)})"
        subject = f"Portal credential {when.split(' (')[0]}: {credential.label}"
        lines = [
            f"The portal's {credential.label} {when}.",
            f"Add a new one in {WHERE} and put it first in PORTAL_CLIENT_SECRETS (or "
            "PORTAL_CLIENT_CERTIFICATES) with its end in PORTAL_CLIENT_SECRETS_EXPIRES; restart "
            "the portal; remove the old one once nothing uses it.",
        ]
        return self._mails(subject, lines)

    def _mails(self, subject: str, lines: Sequence[str]) -> list[Mail]:
        """Return one mail per operator, with a link to the admin page of credentials."""
        link = f"{self.public_url}/admin/credentials"
        text = "\n\n".join([*lines, f"Portal credentials: {link}"]) + "\n"
        body = "".join(f"<p>{escape(line)}</p>" for line in lines)
        anchor = f'<p><a href="{escape(link)}">Portal credentials</a></p>'
        html = f"<html><body>{body}{anchor}</body></html>"
        return [Mail(to, subject, text, html) for to in self.operators]


def _describe(credential: ClientCredential) -> dict[str, Any]:
    """Return a credential as audit and webhook data: public facts only, never a value."""
    return {
        "credential": credential.label,
        "kind": credential.kind,
        "fingerprint": credential.fingerprint,
        "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
    }


def _target(credential: ClientCredential) -> str:
    """Return the audit target of a credential (apart from every tenant's own log)."""
    return f"portal/credentials/{credential.kind}/{credential.fingerprint}"


def _event(action: str, credential: ClientCredential, detail: dict[str, Any]) -> AuditEvent:
    """Return the audit row of one alert."""
    return AuditEvent(
        at=utcnow(), actor=ACTOR, action=action, target=_target(credential), detail=detail
    )


def _recent(db: DB, action: str, credential: ClientCredential, since: datetime) -> bool:
    """Tell whether this alert was already raised for this credential since a time."""
    query = select(AuditEvent.id).where(
        AuditEvent.action == action,
        AuditEvent.target == _target(credential),
        AuditEvent.at >= since,
    )
    return db.scalars(query.limit(1)).first() is not None


def _reminded(db: DB, credential: ClientCredential, threshold: int) -> bool:
    """Tell whether this reminder went out for this credential and this end date."""
    query = select(AuditEvent.detail).where(
        AuditEvent.action == EXPIRING, AuditEvent.target == _target(credential)
    )
    end = credential.expires_at.isoformat() if credential.expires_at else None
    return any(d.get("days") == threshold and d.get("expires_at") == end for d in db.scalars(query))


def _days(days: float) -> str:
    """Return a number of days in words."""
    whole = max(0, int(days))
    return "less than a day" if whole == 0 else f"in {whole} day{'s' if whole != 1 else ''}"
