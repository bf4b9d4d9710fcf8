"""What happens to a helpdesk link: opened, started, completed, failed; its events and audit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app.diagnosis.explain import Diagnosis
from app.errors import EntraError
from app.models import AuditEvent
from app.models import HelpdeskLink
from app.models import LinkEvent
from app.models import utcnow
from app.platform.extensions import db
from app.web import accounts

log = logging.getLogger("app.links")  # the name this bookkeeping's warnings always had
T = TypeVar("T")


def opened(link: HelpdeskLink) -> None:
    """Note that someone opened the landing page."""
    link.opened_at = link.opened_at or utcnow()
    record(link, "opened")
    db.session.commit()


def started(link: HelpdeskLink) -> None:
    """Note that the landing page sent someone to Microsoft."""
    record(link, "started")
    audit("link", "link.used", link.id, kind=link.kind)
    db.session.commit()


def events(link: HelpdeskLink) -> list[LinkEvent]:
    """Return a link's events, oldest first."""
    query = select(LinkEvent).where(LinkEvent.link_id == link.id).order_by(LinkEvent.id)
    return list(db.session.scalars(query))


# -- hooks called where a flow ends ------------------------------------------------------------


def completed(purpose: Mapping[str, Any], response: T) -> T:
    """Mark the link that started this flow as completed, if one did; pass the response on."""
    link = _from_purpose(purpose)
    if link is not None:
        link.completed_at = utcnow()
        link.uses = (link.uses or 0) + 1
        record(link, "completed")
        audit("link", "link.completed", link.id, kind=link.kind)
        _commit_quietly()
    return response


def failed(purpose: Mapping[str, Any], found: Diagnosis, error: EntraError) -> None:
    """Record a failed flow for the user lookup, and on the link that started it."""
    user = accounts.current_user() or {}
    person = str(user.get("username") or purpose.get("login_hint") or "unknown")
    code = (found.aadsts or error.error or "")[:64]
    connector = str(purpose.get("connector") or "-")[:64]
    detail = {"key": found.key[:64], "code": code, "link_id": str(purpose.get("link_id") or "")}
    audit(person, "flow.failed", connector, **detail)
    link = _from_purpose(purpose)
    if link is not None:
        link.failed_at = utcnow()
        link.failure_key = found.key[:64]
        link.failure_code = code or None
        record(link, "failed", f"{found.key} {code}".strip())
    _commit_quietly()


def _commit_quietly() -> None:
    """Commit bookkeeping; a database hiccup here must never spoil the person's page."""
    try:
        db.session.commit()
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("link bookkeeping not stored: %s", type(error).__name__)


def _from_purpose(purpose: Mapping[str, Any]) -> HelpdeskLink | None:
    """Return the link named by a flow's purpose, if any."""
    link_id = purpose.get("link_id")
    return db.session.get(HelpdeskLink, str(link_id)) if link_id else None


def audit(actor: str, action: str, target: str, **detail: str) -> None:
    """Add an audit event to the request's session (the caller commits)."""
    db.session.add(
        AuditEvent(
            at=utcnow(), actor=actor[:320], action=action, target=target[:160], detail=detail
        )
    )


def record(link: HelpdeskLink, event: str, detail: str = "") -> None:
    """Add a link event."""
    db.session.add(LinkEvent(link_id=link.id, at=utcnow(), event=event, detail=detail[:200]))
