"""The helpdesk's user lookup: who matches, and one person's connections, requests and failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import select

from app.diagnosis import explain
from app.diagnosis.catalogue import Diagnosis
from app.helpdesk import keepalive
from app.helpdesk import links
from app.models import DB
from app.models import REAUTHENTICATION_REQUIRED
from app.models import AuditEvent
from app.models import Connection
from app.models import ConsentRequest
from app.models import ConsentRequester
from app.tokens import trail

T = TypeVar("T")


def people(db: DB, query: str, tenants: frozenset[str] | None) -> list[str]:
    """Return the usernames in scope matching a query: the exact account, else its prefix."""
    name = func.lower(Connection.username)
    usernames = _in_scope(select(Connection.username), tenants)
    found = list(db.scalars(usernames.where(name == query).distinct()))
    if not found:
        pattern = query.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
        prefix = usernames.where(name.like(pattern, escape="\\")).distinct()
        found = list(db.scalars(prefix.limit(10)))
    return sorted(set(found))


def person(
    db: DB, username: str, tenants: frozenset[str] | None, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return one person's connections, requests, failed flows, links and reads, in scope.

    names: connector id -> name, for the diagnoses' texts.
    """
    connections = list(
        db.scalars(
            _in_scope(select(Connection), tenants)
            .where(Connection.username == username)
            .order_by(Connection.created_at.desc())
        )
    )
    return {
        "username": username,
        "connections": [health(c, (names or {}).get(c.connector)) for c in connections],
        "requests": _consent_requests(db, username, tenants),
        "failures": _failures(db, username),
        "links": links.for_person(db, username, tenants),
        "reads": trail.reads(db, [c.id for c in connections], limit=20),
    }


def _in_scope(query: Select[tuple[T]], tenants: frozenset[str] | None) -> Select[tuple[T]]:
    """Limit a query on connections to the helpdesk's tenants (None: every tenant)."""
    return query if tenants is None else query.where(Connection.tenant_id.in_(sorted(tenants)))


def health(connection: Connection, connector: str | None = None) -> dict[str, Any]:
    """Return a connection with its health, idle days and last error's diagnosis."""
    code = connection.last_error_code or ""
    return {
        "row": connection,
        "idle_days": keepalive.idle_days(connection),
        "near_limit": keepalive.near_limit(connection),
        "diagnosis": explain_code(code, connector, at_refresh=True) if code else None,
        "status_reauth": connection.status == REAUTHENTICATION_REQUIRED,
    }


def explain_code(code: str, connector: str | None = None, *, at_refresh: bool = False) -> Diagnosis:
    """Return the diagnosis for a stored "AADSTS50173" or OAuth error such as "invalid_grant".

    at_refresh: the code is a connection's last refresh error, not a failed sign-in's.
    """
    error = None if code.upper().startswith("AADSTS") else code
    return explain.diagnose(error, code, connector=connector, at_refresh=at_refresh)


def _failures(db: DB, username: str) -> list[dict[str, Any]]:
    """Return the person's recent failed sign-ins with their diagnosis."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.action == "flow.failed", func.lower(AuditEvent.actor) == username.lower())
        .order_by(AuditEvent.id.desc())
        .limit(10)
    )
    rows = []
    for event in db.scalars(query):
        code = str((event.detail or {}).get("code") or "")
        rows.append({"event": event, "code": code, "diagnosis": explain_code(code)})
    return rows


def _consent_requests(
    db: DB, username: str, tenants: frozenset[str] | None
) -> list[ConsentRequest]:
    """Return the person's consent requests in the helpdesk's tenants."""
    query = (
        select(ConsentRequest)
        .join(ConsentRequester, ConsentRequester.request_id == ConsentRequest.id)
        .where(func.lower(ConsentRequester.username) == username.lower())
    )
    if tenants is not None:
        query = query.where(ConsentRequest.tenant_id.in_(sorted(tenants)))
    return list(db.scalars(query.order_by(ConsentRequest.created_at.desc()).limit(10)))
