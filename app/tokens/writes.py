"""Short write transactions, audit rows and connection events, for the broker and the store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from typing import Literal

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.errors import TemporarilyUnavailable
from app.models import AuditEvent
from app.models import utcnow

log = logging.getLogger(__name__)
# notify.Notifier.publish: webhooks for connection events (None: nobody listens).
Events = Callable[[str, dict[str, Any]], None] | None


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
