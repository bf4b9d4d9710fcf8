"""The admin console: pending requests, Deny, tenant-wide consent per connector, the audit log."""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from typing import cast

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import or_
from sqlalchemy import select

from app.consent import notices
from app.consent import records
from app.identity import roles
from app.models import PENDING
from app.models import AuditEvent
from app.models import ConsentRequest
from app.platform.extensions import db
from app.web import accounts
from app.web.connectors import all_connectors
from app.web.connectors import find
from app.web.consent import event_data
from app.web.consent import notifier

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
AUDIT_LIMIT = 500
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def admin_user() -> dict[str, Any]:
    """Return the signed-in admin, or answer 403 (and log the attempt, C21)."""
    user = accounts.current_user()
    if user is None or not roles.admin_basis(user, current_app.config["ADMIN_USERS"]):
        log.warning("security: admin-only %s refused", request.path[:100])
        abort(403)
    return user


def admin_required(view: F) -> F:
    """Let only the tenant's admins (directory role or PORTAL_ADMIN_USERS) through."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        admin_user()
        return view(*args, **kwargs)

    return accounts.login_required(cast(F, wrapped))


@bp.get("")
@admin_required
def index() -> ResponseReturnValue:
    """Show the tenant's pending requests and per-connector consent."""
    user = admin_user()
    tenant = user["tenant_id"]
    pending = records.pending_in(db.session, tenant)
    db.session.commit()  # requests found expired on the way are recorded as such
    people = {r.id: records.requesters(db.session, r.id) for r in pending}
    return render_template(
        "admin/index.html",
        basis=roles.admin_basis(user, current_app.config["ADMIN_USERS"]),
        pending=pending,
        people=people,
        connectors=all_connectors(),
        granted=records.tenant_consents(db.session, tenant),
    )


@bp.post("/requests/<request_id>/deny")
@admin_required
def deny(request_id: str) -> ResponseReturnValue:
    """Deny a pending request with a reason; its requesters are told."""
    user = admin_user()
    found = own_pending(request_id, user)
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Give a reason: the requesters will read it.")
        return redirect(url_for("consent.show", request_id=found.id), code=303)
    if not records.deny(db.session, found, user["username"], reason):
        db.session.rollback()
        flash("Another administrator decided this request a moment ago.")
        return redirect(url_for("consent.show", request_id=found.id), code=303)
    tell_requesters(found, "consent_request.denied")
    db.session.commit()
    notifier().kick()
    flash(f"The request for {find(found.connector).name} was denied.")
    return redirect(url_for("admin.index"), code=303)


def own_pending(request_id: str, user: dict[str, Any]) -> ConsentRequest:
    """Return a pending request of the admin's own tenant, or answer 404/409."""
    found = db.session.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    if found is None or found.tenant_id != user["tenant_id"]:
        abort(404)
    if found.status != PENDING:
        abort(409, "This request was already decided.")
    return found


def tell_requesters(found: ConsentRequest, event: str) -> None:
    """Queue the webhook and the requesters' mails for a decided or expired request."""
    people = records.requesters(db.session, found.id)
    mails = notices.to_requesters(
        current_app.config["PUBLIC_URL"],
        found,
        find(found.connector).name,
        [p.username for p in people],
    )
    notifier().queue(db.session, event, event_data(found), mails)
    for person in people:
        person.notified_at = found.decided_at


@bp.get("/audit")
@admin_required
def audit() -> ResponseReturnValue:
    """Show the tenant's consent decisions, newest first."""
    return render_template("admin/audit.html", events=_events(admin_user()["tenant_id"]))


@bp.get("/audit.csv")
@admin_required
def audit_csv() -> ResponseReturnValue:
    """Export the tenant's audit log as CSV, with spreadsheet formulas defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", "actor", "action", "target", "detail"])
    for event in _events(admin_user()["tenant_id"]):
        detail = " ".join(f"{k}={v}" for k, v in sorted((event.detail or {}).items()))
        row = [event.at.isoformat(), event.actor, event.action, event.target, detail]
        writer.writerow([_cell(value) for value in row])
    headers = {"Content-Disposition": 'attachment; filename="audit.csv"'}
    return Response(out.getvalue(), mimetype="text/csv", headers=headers)


def _cell(value: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _events(tenant_id: str) -> list[AuditEvent]:
    """Return the audit events about this tenant's consent requests and consents."""
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
        .limit(AUDIT_LIMIT)
    )
    return list(db.session.scalars(query))
