"""A tenant's consent audit log: the events about its requests and consents, and its CSV."""

from __future__ import annotations

import csv
import io

from sqlalchemy import or_
from sqlalchemy import select

from app.models import DB
from app.models import AuditEvent
from app.models import ConsentRequest

AUDIT_LIMIT = 500
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def tenant_events(db: DB, tenant_id: str, limit: int = AUDIT_LIMIT) -> list[AuditEvent]:
    """Return the audit events about this tenant's consent requests and consents, newest first."""
    ids = select(ConsentRequest.id).where(ConsentRequest.tenant_id == tenant_id)
    query = (
        select(AuditEvent)
        .where(
            or_(
                AuditEvent.target.in_(ids),
                AuditEvent.target.startswith(f"{tenant_id}/", autoescape=True),
            )
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    return list(db.scalars(query))


def as_csv(events: list[AuditEvent]) -> str:
    """Return the events as CSV, with spreadsheet formulas defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", "actor", "action", "target", "detail"])
    for event in events:
        detail = " ".join(f"{k}={v}" for k, v in sorted((event.detail or {}).items()))
        row = [event.at.isoformat(), event.actor, event.action, event.target, detail]
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value
