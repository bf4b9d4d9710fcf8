"""What happens to a helpdesk link: opened, started, completed, failed; its events and audit."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.diagnosis.catalogue import Diagnosis
from app.errors import EntraError
from app.models import DB
from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import LinkEvent
from app.models import utcnow

log = logging.getLogger(__name__)
ANONYMOUS_FAILED = "flow.failed.anonymous"  # one row per connector, diagnosis and hour (C53)
OPENED_EVERY = timedelta(hours=1)  # a landing page fetched again within this adds no event
SAFE_CODE = re.compile(r"AADSTS[0-9]{1,9}|[a-z_]{1,40}")


def opened(db: DB, link: HelpdeskLink) -> None:
    """Note that someone opened the landing page: at most one event per link and hour.

    Mail scanners fetch links before people do, as often as they like; opening uses nothing,
    and this GET writes at most one row an hour however often it is fetched.
    """
    now = utcnow()
    recent = select(LinkEvent.id).where(
        LinkEvent.link_id == link.id,
        LinkEvent.event == "opened",
        LinkEvent.at > now - OPENED_EVERY,
    )
    if link.opened_at is not None and db.scalars(recent.limit(1)).first() is not None:
        return
    link.opened_at = link.opened_at or now
    record(db, link, "opened")
    db.commit()


def started(db: DB, link: HelpdeskLink) -> None:
    """Note that the landing page sent someone to Microsoft."""
    record(db, link, "started")
    audit(db, "link", "link.used", link.id, kind=link.kind)
    db.commit()


def events(db: DB, link: HelpdeskLink) -> list[LinkEvent]:
    """Return a link's events, oldest first."""
    query = select(LinkEvent).where(LinkEvent.link_id == link.id).order_by(LinkEvent.id)
    return list(db.scalars(query))


# -- hooks called where a flow ends ------------------------------------------------------------


def completed(db: DB, purpose: Mapping[str, Any]) -> None:
    """Mark the link that started this flow as completed, if one did."""
    link = _from_purpose(db, purpose)
    if link is not None:
        link.completed_at = utcnow()
        link.uses = (link.uses or 0) + 1
        record(db, link, "completed")
        audit(db, "link", "link.completed", link.id, kind=link.kind)
        _commit_quietly(db)


def failed(
    db: DB, purpose: Mapping[str, Any], found: Diagnosis, error: EntraError, person: str | None
) -> None:
    """Record a failed flow for the user lookup, and on the link that started it.

    Only the diagnosis and a code of a known shape are kept: Entra's (or an attacker's)
    error_description never enters the audit log. A failure nobody signed in for and no link
    started is counted per diagnosis and hour in one row, so forged callbacks cannot flood it.
    """
    code = _safe_code(found.aadsts or error.error or "")
    connector = str(purpose.get("connector") or "-")[:64]
    link_id = str(purpose.get("link_id") or "")
    if person is None and not link_id:
        _count_anonymous(db, connector, found.key[:64], code)
    else:
        who = str(person or purpose.get("login_hint") or "unknown")
        detail = {"key": found.key[:64], "code": code, "link_id": link_id}
        audit(db, who, "flow.failed", connector, **detail)
    link = _from_purpose(db, purpose)
    if link is not None:
        link.failed_at = utcnow()
        link.failure_key = found.key[:64]
        link.failure_code = code or None
        record(db, link, "failed", f"{found.key} {code}".strip())
    _commit_quietly(db)


def _safe_code(value: str) -> str:
    """Return an AADSTS number or an OAuth error word; anything else is "other"."""
    return value if SAFE_CODE.fullmatch(value) else "other"


def _count_anonymous(db: DB, connector: str, key: str, code: str) -> None:
    """Add one to this hour's counter of anonymous failures with this diagnosis (code: latest)."""
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    target = f"{connector}:{key}"[:160]  # both from fixed lists: the rows per hour are bounded
    query = (
        select(AuditEvent)
        .where(AuditEvent.action == ANONYMOUS_FAILED)
        .where(AuditEvent.target == target)
        .where(AuditEvent.at >= hour)
        .order_by(AuditEvent.id)
        .limit(1)
        .with_for_update()
    )
    row = db.scalars(query).first()
    if row is None:
        detail = {"key": key, "code": code, "hour": hour.isoformat(), "count": "1"}
        audit(db, "anonymous", ANONYMOUS_FAILED, target, **detail)
    else:
        count = str(int(row.detail.get("count", "0")) + 1)
        row.detail = dict(row.detail) | {"count": count, "code": code}


def _commit_quietly(db: DB) -> None:
    """Commit bookkeeping; a database hiccup here must never spoil the person's page."""
    try:
        db.commit()
    except SQLAlchemyError as error:
        db.rollback()
        log.warning("link bookkeeping not stored: %s", type(error).__name__)


def _from_purpose(db: DB, purpose: Mapping[str, Any]) -> HelpdeskLink | None:
    """Return the link named by a flow's purpose, if any."""
    link_id = purpose.get("link_id")
    return db.get(HelpdeskLink, str(link_id)) if link_id else None


def audit(db: DB, actor: str, action: str, target: str, **detail: str) -> None:
    """Add an audit event to the session (the caller commits)."""
    event = AuditEvent(
        at=utcnow(), actor=actor[:320], action=action, target=target[:160], detail=detail
    )
    db.add(event)


def record(db: DB, link: HelpdeskLink, event: str, detail: str = "") -> None:
    """Add a link event."""
    db.add(LinkEvent(link_id=link.id, at=utcnow(), event=event, detail=detail[:200]))
