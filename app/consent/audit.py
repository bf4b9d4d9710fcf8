"""A tenant's consent audit log: its events in plain words, filtered, paged, and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select

from app.models import DB
from app.models import AuditEvent
from app.models import ConsentRequest
from app.models import utcnow

PAGE_SIZE = 50
CSV_LIMIT = 10_000  # one export's rows at most; filter by date for more
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
READINESS_CHECKED = "readiness.checked"
CONSENT_POLICIES = "consent_policies"  # a readiness check's Graph read, for Check access
ASSIGNMENT_REQUIRED = "assignment_required"
# Event keys in plain words: what the log, its filter and its CSV call them.
LABELS = {
    "consent_request.created": "Request sent",
    "consent_request.approved": "Request approved",
    "consent_request.denied": "Request denied",
    "consent_request.expired": "Request expired",
    "tenant_consent.granted": "Granted for organization",
    "tenant_consent.withdrawn": "Organization grant withdrawn",
    READINESS_CHECKED: "Readiness checked",
}
ACTOR_NAMES = {"portal": "The portal (requests expire on their own)"}
DETAIL_NAMES = {
    "connector": "Connector",
    "reason": "Reason",
    "problems": "Problems found",
    "result": "Result",
    "scopes": "Permissions",
    CONSENT_POLICIES: "User consent policies",
    ASSIGNMENT_REQUIRED: "Assignment required",
}


@dataclass(frozen=True)
class Filters:
    """What the admin narrowed the log to; empty values filter nothing."""

    event: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> tuple[Filters, list[str]]:
        """Return the filters of a query string and the names of the values not understood."""
        wrong: list[str] = []
        event = args.get("event", "")
        if event and event not in LABELS:
            event = ""
            wrong.append("event")
        since, until = _day(args.get("from"), "from", wrong), _day(args.get("to"), "to", wrong)
        return cls(event, args.get("actor", "")[:320], since, until), wrong

    def as_args(self) -> dict[str, str]:
        """Return the filters as query arguments (for paging links and the CSV link)."""
        values = {
            "event": self.event,
            "actor": self.actor,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class Row:
    """One event as the log shows it."""

    at: datetime
    actor: str
    action: str
    label: str
    target: str
    target_name: str
    request_id: str | None
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Page:
    """One page of the filtered log."""

    rows: list[Row]
    number: int
    pages: int
    total: int


def page(db: DB, tenant_id: str, filters: Filters, number: int, names: Mapping[str, str]) -> Page:
    """Return one page (from 1) of the tenant's filtered events, newest first."""
    query = _query(tenant_id, filters)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(max(1, number), pages)
    events = list(db.scalars(query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return Page(_rows(db, events, names), number, pages, total)


def actors(db: DB, tenant_id: str) -> list[str]:
    """Return everyone who appears in the tenant's log, for the actor filter."""
    query = _query(tenant_id, Filters()).order_by(None).with_only_columns(AuditEvent.actor)
    return sorted(set(db.scalars(query.distinct())))


def as_csv(db: DB, tenant_id: str, filters: Filters, names: Mapping[str, str]) -> Iterator[str]:
    """Yield the filtered log as CSV lines, with spreadsheet formulas defused."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time_utc", "event", "event_key", "actor", "target", "target_id", "details"])
    events = list(db.scalars(_query(tenant_id, filters).limit(CSV_LIMIT)))
    for row in _rows(db, events, names):
        details = "; ".join(f"{key}: {value}" for key, value in row.details)
        cells = [row.at.isoformat(), row.label, row.action, row.actor, row.target_name]
        writer.writerow([_cell(value) for value in [*cells, row.target, details]])
        yield _drain(out)
    yield _drain(out)


@dataclass(frozen=True)
class ConsentSeen:
    """What a readiness check read of user consent: Check access says it before any redirect."""

    policies: list[str]  # authorizationPolicy's permissionGrantPoliciesAssigned
    assignment_required: bool
    at: datetime | None = None


def readiness_checked(
    db: DB,
    admin: str,
    tenant_id: str,
    problems: int,
    failed: str,
    seen: ConsentSeen | None = None,
) -> None:
    """Add the audit event of one readiness check (the caller commits)."""
    result = f"Graph could not be read: {failed}" if failed else "checked"
    detail = {"result": result[:200], "problems": str(problems)}
    if seen is not None:
        detail[CONSENT_POLICIES] = " ".join(seen.policies)[:1000]
        detail[ASSIGNMENT_REQUIRED] = "yes" if seen.assignment_required else "no"
    db.add(
        AuditEvent(
            at=utcnow(),
            actor=admin[:320],
            action=READINESS_CHECKED,
            target=f"{tenant_id}/readiness"[:160],
            detail=detail,
        )
    )


def consent_seen(db: DB, tenant_id: str) -> ConsentSeen | None:
    """Return what the tenant's latest readable readiness check saw of user consent, if any."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.action == READINESS_CHECKED)
        .where(AuditEvent.target == f"{tenant_id}/readiness"[:160])
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(20)
    )
    for event in db.scalars(query):
        detail = event.detail or {}
        if CONSENT_POLICIES in detail:  # a check whose Graph read failed saw nothing
            policies = str(detail[CONSENT_POLICIES]).split()
            required = detail.get(ASSIGNMENT_REQUIRED) == "yes"
            return ConsentSeen(policies, required, event.at)
    return None


def _query(tenant_id: str, filters: Filters) -> Select[tuple[AuditEvent]]:
    """Return the tenant's events (its requests' and its own), filtered, newest first."""
    ids = select(ConsentRequest.id).where(ConsentRequest.tenant_id == tenant_id)
    query = select(AuditEvent).where(
        or_(
            AuditEvent.target.in_(ids),
            AuditEvent.target.startswith(f"{tenant_id}/", autoescape=True),
        )
    )
    if filters.event:
        query = query.where(AuditEvent.action == filters.event)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.since:
        query = query.where(AuditEvent.at >= datetime.combine(filters.since, time(), UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        query = query.where(AuditEvent.at < end)
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def _rows(db: DB, events: list[AuditEvent], names: Mapping[str, str]) -> list[Row]:
    """Return events with labels and the names of what they were about."""
    ids = {event.target for event in events if "/" not in event.target}
    query = select(ConsentRequest).where(ConsentRequest.id.in_(ids))
    requests = {request.id: request for request in (db.scalars(query) if ids else ())}
    return [_row(event, requests.get(event.target), names) for event in events]


def _row(event: AuditEvent, request: ConsentRequest | None, names: Mapping[str, str]) -> Row:
    """Return one event in plain words."""
    if request is not None:
        target = f"Request for {names.get(request.connector, request.connector)}"
    else:
        what = event.target.partition("/")[2]
        target = "Tenant readiness" if what == "readiness" else names.get(what, what or "-")
    details = tuple(
        (
            DETAIL_NAMES.get(key, key),
            names.get(str(value), str(value)) if key == "connector" else str(value),
        )
        for key, value in sorted(_detail(event).items())
    )
    return Row(
        at=event.at,
        actor=ACTOR_NAMES.get(event.actor, event.actor),
        action=event.action,
        label=LABELS.get(event.action, event.action),
        target=event.target,
        target_name=target,
        request_id=request.id if request is not None else None,
        details=details,
    )


def _detail(event: AuditEvent) -> dict[str, Any]:
    """Return an event's details, without an empty reason."""
    return {key: value for key, value in (event.detail or {}).items() if value not in ("", None)}


def _day(value: str | None, name: str, wrong: list[str]) -> date | None:
    """Return a YYYY-MM-DD date, or None (noting the name when the value was not a date)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        wrong.append(name)
        return None


def _cell(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _drain(buffer: io.StringIO) -> str:
    """Return and clear what the writer buffered."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
