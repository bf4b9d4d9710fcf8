"""Notifications: webhooks (HMAC-signed) and e-mail, queued as deliveries and retried; Flask-free.

Events are written to the deliveries table in the caller's transaction and sent afterwards by a
background thread (or by `run_due` from a job or a test), so a failing mail server or webhook
never fails the person's request. Each attempt is claimed with a compare-and-swap on `attempts`,
so several workers never send the same delivery twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote
from urllib.parse import urlsplit

import requests
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.consent import DB
from app.models import PENDING
from app.models import Delivery
from app.models import utcnow

log = logging.getLogger(__name__)
SENT = "sent"
FAILED = "failed"
CLAIM_SECONDS = 120.0  # a crashed sender's claim lapses after this
MAX_BACKOFF = 600.0
EVENTS = (
    "consent_request.created",
    "consent_request.approved",
    "consent_request.denied",
    "consent_request.expired",
    "tenant_consent.granted",
    "connection.created",
    "connection.reauthentication_required",
)


@dataclass(frozen=True)
class Mail:
    """One e-mail: recipient, subject, plain text and HTML."""

    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go and how hard to try."""

    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    smtp_url: str = ""
    mail_from: str = "portal@localhost"
    timeout: float = 10.0
    max_attempts: int = 5
    backoff: float = 2.0
    background: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NotifySettings:
        """Build from the app's configuration mapping."""
        return cls(
            webhook_urls=tuple(config.get("WEBHOOK_URLS") or ()),
            webhook_secret=str(config.get("WEBHOOK_SECRET") or ""),
            smtp_url=str(config.get("SMTP_URL") or ""),
            mail_from=str(config.get("MAIL_FROM") or "portal@localhost"),
            timeout=float(config.get("HTTP_TIMEOUT") or 10.0),
            max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS") or 5),
            backoff=float(config.get("NOTIFY_BACKOFF") or 2.0),
            background=str(config.get("NOTIFY_MODE") or "thread") != "manual",
        )


def signature(secret: str, body: bytes) -> str:
    """Return the X-Portal-Signature value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Queues events as deliveries and sends them with bounded retries."""

    def __init__(self, sessions: Callable[[], Session], settings: NotifySettings) -> None:
        self._sessions = sessions
        self.settings = settings
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._kicked = False

    # -- queueing ------------------------------------------------------------------------------

    def queue(self, db: DB, event: str, data: Mapping[str, Any], mails: Sequence[Mail] = ()) -> int:
        """Add this event's deliveries to the caller's transaction; return how many."""
        now = time.time()
        envelope = {"event": event, "created_at": utcnow().isoformat(), "data": dict(data)}
        rows = [
            Delivery(event=event, channel="webhook", target=url[:500], payload=envelope)
            for url in self.settings.webhook_urls
        ]
        if self.settings.smtp_url:
            rows += [
                Delivery(event=event, channel="mail", target=mail.to[:500], payload=_mail(mail))
                for mail in mails
            ]
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = PENDING, 0, now
            db.add(row)
        return len(rows)

    def publish(self, event: str, data: Mapping[str, Any], mails: Sequence[Mail] = ()) -> None:
        """Queue an event in its own transaction and send it soon; never raises."""
        try:
            with self._sessions() as db, db.begin():
                count = self.queue(db, event, data, mails)
        except Exception:  # noqa: BLE001 - bookkeeping must never fail the caller
            log.exception("could not queue %s", event)
            return
        if count:
            self.kick()

    # -- sending -------------------------------------------------------------------------------

    def kick(self) -> None:
        """Wake the background sender (or do nothing in manual mode)."""
        if not self.settings.background:
            return
        with self._lock:
            self._kicked = True
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="notify", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        """Send due deliveries until none is pending, sleeping until the next retry."""
        while True:
            self._wake.clear()
            try:
                self.run_due()
                wait = self._next_due()
            except Exception:  # noqa: BLE001 - the database went away: try again on the next kick
                log.exception("notification sender failed")
                wait = None
            with self._lock:
                if wait is None and not self._kicked:
                    self._thread = None
                    return
                self._kicked = False
            self._wake.wait(timeout=max(0.05, wait or 0.05))

    def _next_due(self) -> float | None:
        """Return seconds until the next pending delivery is due, or None."""
        with self._sessions() as db:
            earliest = db.scalar(
                select(func.min(Delivery.next_attempt_at)).where(Delivery.status == PENDING)
            )
        return None if earliest is None else max(0.0, float(earliest) - time.time())

    def run_due(self, now: float | None = None) -> int:
        """Attempt every pending delivery that is due; return how many were attempted."""
        now = time.time() if now is None else now
        with self._sessions() as db:
            due = list(
                db.scalars(
                    select(Delivery)
                    .where(Delivery.status == PENDING, Delivery.next_attempt_at <= now)
                    .order_by(Delivery.id)
                    .limit(100)
                )
            )
        attempted = 0
        for delivery in due:
            if self._claim(delivery, now):
                attempted += 1
                self._attempt(delivery, now)
        return attempted

    def _claim(self, delivery: Delivery, now: float) -> bool:
        """Take one attempt of a delivery; False when another worker took it first."""
        with self._sessions() as db, db.begin():
            result = db.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.attempts == delivery.attempts)
                .values(attempts=delivery.attempts + 1, next_attempt_at=now + CLAIM_SECONDS)
            )
        delivery.attempts += 1
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _attempt(self, delivery: Delivery, now: float) -> None:
        """Send once and record the outcome, scheduling a retry with backoff on failure."""
        try:
            if delivery.channel == "webhook":
                self._send_webhook(delivery)
            else:
                self._send_mail(delivery.payload)
            values: dict[str, Any] = {"status": SENT, "delivered_at": utcnow(), "last_error": None}
        except Exception as error:  # noqa: BLE001 - any failure is retried, then logged
            problem = f"{type(error).__name__}: {str(error)[:200]}"
            log.warning("delivery %s (%s) failed: %s", delivery.id, delivery.event, problem)
            delay = min(MAX_BACKOFF, self.settings.backoff * 2 ** (delivery.attempts - 1))
            give_up = delivery.attempts >= self.settings.max_attempts
            values = {
                "status": FAILED if give_up else PENDING,
                "next_attempt_at": now + delay,
                "last_error": problem[:300],
            }
        with self._sessions() as db, db.begin():
            db.execute(update(Delivery).where(Delivery.id == delivery.id).values(**values))

    def _send_webhook(self, delivery: Delivery) -> None:
        """POST the event as JSON with a timestamp and an HMAC signature."""
        body = json.dumps(
            delivery.payload | {"delivery": delivery.id}, separators=(",", ":"), sort_keys=True
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "connector-consent-portal",
            "X-Portal-Event": delivery.event,
            "X-Portal-Delivery": str(delivery.id),
            "X-Portal-Timestamp": str(int(time.time())),
        }
        if self.settings.webhook_secret:
            headers["X-Portal-Signature"] = signature(self.settings.webhook_secret, body)
        response = requests.post(
            delivery.target, data=body, headers=headers, timeout=self.settings.timeout
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")

    def _send_mail(self, payload: Mapping[str, Any]) -> None:
        """Send one e-mail over SMTP (smtp:// with optional STARTTLS, or smtps://)."""
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = str(payload["to"])
        message["Subject"] = str(payload["subject"])
        message.set_content(str(payload["text"]))
        message.add_alternative(str(payload["html"]), subtype="html")
        url = urlsplit(self.settings.smtp_url)
        host, timeout = url.hostname or "localhost", self.settings.timeout
        if url.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=timeout)
        else:
            client = smtplib.SMTP(host, url.port or 25, timeout=timeout)
        with client:
            if url.scheme == "smtp" and "starttls" in url.query:
                client.starttls()
            if url.username:
                client.login(unquote(url.username), unquote(url.password or ""))
            client.send_message(message)


def _mail(mail: Mail) -> dict[str, str]:
    """Return a mail as a delivery payload."""
    return {"to": mail.to, "subject": mail.subject, "text": mail.text, "html": mail.html}
