"""Notifications: webhooks (HMAC-signed) and e-mail, queued as deliveries and retried; Flask-free.

Events are written to the deliveries table in the caller's transaction and sent afterwards by a
background thread (or by `run_due` from a job or a test), so a failing mail server or webhook
never fails the person's request. Each attempt is claimed with a compare-and-swap on `attempts`,
so several workers never send the same delivery twice.

A mail's text and HTML may carry a working link (a reconnect link), so with a sealer (the app's
vault) they are stored sealed under the delivery's id, and wiped once the delivery is sent or
has failed for good: only the recipient and the subject stay for the record.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import DB
from app.models import PENDING
from app.models import Delivery
from app.models import utcnow
from app.notify import senders
from app.notify.senders import Mail
from app.notify.settings import NotifySettings
from app.notify.settings import Sealer

log = logging.getLogger(__name__)
SENT = "sent"
FAILED = "failed"
CLAIM_SECONDS = 120.0  # a crashed sender's claim lapses after this
MAX_BACKOFF = 600.0


class Notifier:
    """Queues events as deliveries and sends them with bounded retries."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        settings: NotifySettings,
        sealer: Sealer | None = None,
        delivered: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._delivered = delivered  # the metrics hook: each attempt's channel and whether it went
        self.settings = settings
        self._sealer = sealer  # seals mail bodies at rest; without one they are kept until sent
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._kicked = False
        self._stopped = False

    # -- queueing ------------------------------------------------------------------------------

    def queue(
        self,
        db: DB,
        event: str,
        data: Mapping[str, Any],
        mails: Sequence[Mail] = (),
        *,
        webhooks: bool = True,
    ) -> int:
        """Add this event's deliveries to the caller's transaction; return how many.

        With `webhooks=False` only the mails are queued (their links must not reach a webhook).
        """
        now = time.time()
        envelope = {"event": event, "created_at": utcnow().isoformat(), "data": dict(data)}
        rows = [
            Delivery(event=event, channel="webhook", target=url[:500], payload=envelope)
            for url in (self.settings.webhook_urls if webhooks else ())
        ]
        mailed = [
            (Delivery(event=event, channel="mail", target=mail.to[:500]), mail)
            for mail in (mails if self.settings.smtp_url else ())
        ]
        for row in rows + [row for row, _ in mailed]:
            row.status, row.attempts, row.next_attempt_at = PENDING, 0, now
            db.add(row)
        if mailed and self._sealer is not None:
            for row, mail in mailed:
                row.payload = _envelope(mail)  # no body in the row until it is sealed
            db.flush()  # the body is sealed under the delivery's id: it cannot move to another row
            for row, mail in mailed:
                row.payload = _envelope(mail) | {"sealed": self._seal(row.id, mail)}
        else:
            for row, mail in mailed:
                row.payload = _mail(mail)
        return len(rows) + len(mailed)

    def publish(
        self,
        event: str,
        data: Mapping[str, Any],
        mails: Sequence[Mail] = (),
        *,
        webhooks: bool = True,
    ) -> None:
        """Queue an event in its own transaction and send it soon; never raises."""
        try:
            with self._sessions() as db, db.begin():
                count = self.queue(db, event, data, mails, webhooks=webhooks)
        except Exception:  # bookkeeping must never fail the caller
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
            if self._stopped:
                return  # the app is shutting down: what is queued waits for the next start
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
            except Exception:  # the database went away: try again on the next kick
                log.exception("notification sender failed")
                wait = None
            with self._lock:
                if self._stopped or (wait is None and not self._kicked):
                    self._thread = None
                    return
                self._kicked = False
            self._wake.wait(timeout=max(0.05, wait or 0.05))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background sender after its current attempt (before the engine is disposed).

        A thread still holding a connection when the pool is disposed would leave that
        connection open until garbage collection; pending deliveries stay queued in the table.
        """
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)

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
                body = delivery.payload | {"delivery": delivery.id}
                senders.post_webhook(delivery.target, delivery.event, body, self.settings)
            else:
                senders.send_mail(self._opened(delivery), self.settings)
            values: dict[str, Any] = {"status": SENT, "delivered_at": utcnow(), "last_error": None}
        except Exception as error:  # any failure is retried, then logged
            self._count(delivery.channel, ok=False)
            problem = f"{type(error).__name__}: {str(error)[:200]}"
            log.warning("delivery %s (%s) failed: %s", delivery.id, delivery.event, problem)
            delay = min(MAX_BACKOFF, self.settings.backoff * 2 ** (delivery.attempts - 1))
            give_up = delivery.attempts >= self.settings.max_attempts
            values = {
                "status": FAILED if give_up else PENDING,
                "next_attempt_at": now + delay,
                "last_error": problem[:300],
            }
        else:
            self._count(delivery.channel, ok=True)
        if delivery.channel == "mail" and values["status"] != PENDING:
            values["payload"] = _envelope_of(delivery.payload)  # done with: wipe the body
        with self._sessions() as db, db.begin():
            db.execute(update(Delivery).where(Delivery.id == delivery.id).values(**values))

    def _count(self, channel: str, *, ok: bool) -> None:
        """Tell the metrics hook how an attempt went."""
        if self._delivered is not None:
            self._delivered(channel, ok)

    def _seal(self, delivery_id: int, mail: Mail) -> dict[str, str]:
        """Return a mail's text and HTML sealed for this delivery."""
        assert self._sealer is not None
        body = json.dumps({"text": mail.text, "html": mail.html}).encode()
        key_id, blob = self._sealer.seal(f"delivery:{delivery_id}", body)
        return {"kid": key_id, "blob": blob.hex()}

    def _opened(self, delivery: Delivery) -> dict[str, Any]:
        """Return a mail delivery's payload with its body opened (when it was sealed)."""
        sealed = delivery.payload.get("sealed")
        if not sealed:
            return delivery.payload
        if self._sealer is None:
            raise RuntimeError("this mail is sealed and the notifier has no key to open it")
        blob = bytes.fromhex(sealed["blob"])
        body = self._sealer.open(f"delivery:{delivery.id}", sealed["kid"], blob)
        return _envelope_of(delivery.payload) | json.loads(body)


def _envelope(mail: Mail) -> dict[str, str]:
    """Return what a mail delivery keeps once sent: the recipient and the subject."""
    return {"to": mail.to, "subject": mail.subject}


def _envelope_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return a mail payload without its body."""
    return {k: payload[k] for k in ("to", "subject") if k in payload}


def _mail(mail: Mail) -> dict[str, str]:
    """Return a mail as a delivery payload."""
    return {"to": mail.to, "subject": mail.subject, "text": mail.text, "html": mail.html}
