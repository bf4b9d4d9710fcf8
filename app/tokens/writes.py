"""Short write transactions, audit rows, connection events, and the broker's row writes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from typing import Literal

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.errors import TemporarilyUnavailable
from app.identity.outcomes import RefreshRefused
from app.models import REAUTHENTICATION_REQUIRED
from app.models import AuditEvent
from app.models import Connection
from app.models import aware
from app.models import utcnow
from app.tokens.rows import TABLE
from app.tokens.rows import TokenRow
from app.tokens.vault import Vault

log = logging.getLogger(__name__)
# notify.Notifier.publish: webhooks for connection events (None: nobody listens).
Events = Callable[[str, dict[str, Any]], None] | None
OWNER = "owner"  # an event's owner address: for the owner's mail, never sent to webhooks


class Transaction:
    """One short write transaction; a database failure becomes a retryable 503 (C35)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        self.session.begin()
        return self.session

    def __exit__(self, kind: Any, error: Any, _tb: Any) -> Literal[False]:
        try:
            if kind is None:
                self.session.commit()
            else:
                self.session.rollback()
        except OperationalError as failure:
            self.session.rollback()
            log.warning("database write failed: %s", type(failure).__name__)
            raise TemporarilyUnavailable(retry_after=2) from None
        finally:  # an IntegrityError from commit (a racing insert) must not leak the connection
            self.session.close()
        if isinstance(error, OperationalError):
            log.warning("database write failed: %s", type(error).__name__)
            raise TemporarilyUnavailable(retry_after=2) from None
        return False


def audit(actor: str, action: str, target: str, **detail: str) -> AuditEvent:
    """Return an audit event row."""
    return AuditEvent(at=utcnow(), actor=actor[:320], action=action, target=target, detail=detail)


def publish(events: Events, event: str, connection_id: str, connector: str, **extra: str) -> None:
    """Tell the notifier (webhooks) about a connection event, if one is attached."""
    if events is not None:
        events(event, {"connection_id": connection_id, "connector": connector} | extra)


class RowWrites:
    """The broker's writes to a connection row: a refreshed cache, a reconnect flag, last use."""

    def __init__(
        self, sessions: Callable[[], Session], vault: Vault, events: Events, last_used: timedelta
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._events = events
        self._last_used = last_used  # last_used_at is written at most once per this period

    def store_refreshed(self, row: TokenRow, blob: str, used: bool = False) -> None:
        """Write the new cache only if nobody wrote since we read it (compare-and-swap)."""
        key_id, sealed = self._vault.seal(row.id, blob.encode())
        now = utcnow()
        values: dict[str, Any] = {
            "key_id": key_id,
            "sealed_cache": sealed,
            "cache_version": row.cache_version + 1,
            "last_refresh_at": now,
        }
        if used:  # a data tool's call, not the keep-alive job
            values["last_used_at"] = now
        with Transaction(self._sessions()) as db:
            result = db.connection().execute(
                update(TABLE)
                .where(TABLE.c.id == row.id, TABLE.c.cache_version == row.cache_version)
                .values(**values)
            )
        if not result.rowcount:
            # Someone wrote a newer cache meanwhile (a reconnect, or a lock that lapsed):
            # theirs wins, so an older refresh token never overwrites a newer one.
            log.warning("refreshed cache not stored for %s: version moved on", row.id)

    def mark_reauthentication(self, row: TokenRow, refused: RefreshRefused) -> None:
        """Flag the connection for reconnection; keep the row and its sealed cache (C29)."""
        code = f"AADSTS{refused.codes[0]}" if refused.codes else refused.error
        with Transaction(self._sessions()) as db:
            db.execute(
                update(Connection)
                .where(Connection.id == row.id, Connection.cache_version == row.cache_version)
                .values(
                    status=REAUTHENTICATION_REQUIRED,
                    last_error_code=code[:64],
                    last_error=f"refresh refused: {refused.error}"[:200],
                )
            )
            db.add(audit("api", "connection.reauthentication_required", row.id, code=code))
        log.info("connection %s needs reauthentication (%s)", row.id, code)
        publish(self._events, "connection.reauthentication_required", row.id, row.connector,
                code=code, **{OWNER: row.username})  # fmt: skip

    def touch(self, row: TokenRow) -> None:
        """Record use at most once per resolution period, to avoid a write per call."""
        now = utcnow()
        last = row.last_used_at
        if last is not None and now - aware(last) < self._last_used:
            return
        try:
            with Transaction(self._sessions()) as db:
                db.execute(
                    update(Connection).where(Connection.id == row.id).values(last_used_at=now)
                )
        except TemporarilyUnavailable:  # bookkeeping only: never fail a token for it
            log.warning("last_used_at not updated for %s", row.id)
