"""The admin console: pending requests, Deny, tenant-wide consent, the audit log, the trail."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from app.consent import audit
from app.consent import decisions
from app.consent import records
from app.errors import Forbidden
from app.identity import credentials
from app.identity import roles
from app.platform import extensions
from app.platform.extensions import db
from app.tokens import trail
from app.web.accounts import admin_user
from app.web.accounts import all_connectors
from app.web.accounts import find
from app.web.accounts import login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
@login_required(role="admin")
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
        portal_admin=_portal_admin(user),
    )


@bp.get("/credentials")
@login_required(role="admin")
def credentials_page() -> ResponseReturnValue:
    """Show the portal's own secrets and certificates (portal admins only): ends, use, refusals."""
    if not _portal_admin(admin_user()):
        raise Forbidden()  # a customer tenant's admin has no business with the portal's keys
    now = datetime.now(UTC)
    rows = extensions.identity().credential_status()
    return render_template(
        "admin/credentials.html",
        rows=rows,
        now=now,
        warnings=credentials.warnings(rows, now),
        warning_days=credentials.WARNING_DAYS,
    )


def _portal_admin(user: dict[str, Any]) -> bool:
    """Tell whether the operator lists this account in PORTAL_ADMIN_USERS."""
    return roles.staff_id(user) in set(current_app.config["ADMIN_USERS"])


@bp.post("/requests/<request_id>/deny")
@login_required(role="admin")
def deny(request_id: str) -> ResponseReturnValue:
    """Deny a pending request with a reason; its requesters are told."""
    user = admin_user()
    found = records.own_pending(db.session, request_id, user["tenant_id"])
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Give a reason: the requesters will read it.", "error")
        return redirect(url_for("consent.show", request_id=found.id), code=303)
    connector = find(found.connector)
    public_url = current_app.config["PUBLIC_URL"]
    notifier = extensions.notifier()
    if not decisions.deny(
        db.session, notifier, public_url, found, connector, user["username"], reason
    ):
        flash("Another administrator decided this request a moment ago.", "error")
        return redirect(url_for("consent.show", request_id=found.id), code=303)
    flash(f"The request for {connector.name} was denied.", "success")
    return redirect(url_for("admin.index"), code=303)


@bp.get("/audit", endpoint="audit")  # the module name audit is the query
@login_required(role="admin")
def audit_log() -> ResponseReturnValue:
    """Show the tenant's audit log in plain words, filtered and paged, newest first."""
    tenant = admin_user()["tenant_id"]
    filters, wrong = audit.Filters.from_args(request.args)
    for name in wrong:
        flash(f"The {_FILTER_NAMES[name]} filter was not understood and is not applied.", "error")
    number = request.args.get("page", "1")
    shown = audit.page(
        db.session, tenant, filters, int(number) if number.isdigit() else 1, _names()
    )
    return render_template(
        "admin/audit.html",
        page=shown,
        filters=filters,
        args=filters.as_args(),
        labels=audit.LABELS,
        actors=audit.actors(db.session, tenant),
    )


@bp.get("/access")
@login_required(role="admin")
def access_trail() -> ResponseReturnValue:
    """Show which tools read the tenant's connections: code, address, agent, hour, calls."""
    reads = trail.tenant_reads(db.session, admin_user()["tenant_id"])
    return render_template(
        "admin/access.html",
        reads=reads,
        connectors=extensions.connectors(),
        trail_days=current_app.config["ACCESS_TRAIL_DAYS"],
    )


@bp.get("/audit.csv")
@login_required(role="admin")
def audit_csv() -> ResponseReturnValue:
    """Export the filtered audit log as CSV, with spreadsheet formulas defused."""
    filters, _ = audit.Filters.from_args(request.args)
    lines = audit.as_csv(db.session, admin_user()["tenant_id"], filters, _names())
    headers = {"Content-Disposition": 'attachment; filename="audit.csv"'}
    return Response("".join(lines), mimetype="text/csv", headers=headers)


_FILTER_NAMES = {"event": "event", "from": "From date", "to": "To date"}


def _names() -> dict[str, str]:
    """Return the connectors' names by id, for the log's targets."""
    return {connector.id: connector.name for connector in all_connectors().values()}
