"""Tenant readiness: the admin signs in for Graph read scopes, the portal reads and forgets.

The admin's Graph token is used once, inside the callback that redeemed it, and then dropped
with its MSAL cache: only the resulting checklist (plain text) is kept in the session. No
refresh token for directory reads is ever stored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import GRAPH
from app.consent import audit
from app.consent import readiness
from app.consent import records
from app.errors import GraphUnavailable
from app.errors import SignInRejected
from app.identity import flows
from app.identity.signins import SignIn
from app.platform import extensions
from app.platform.extensions import db
from app.web.accounts import admin_user
from app.web.accounts import all_connectors
from app.web.accounts import login_required

bp = Blueprint("readiness", __name__, url_prefix="/admin")
REPORT_KEY = "app.blueprints.readiness.report"  # a live session key: kept across moves


@bp.get("/readiness")
@login_required(role="admin")
def show() -> ResponseReturnValue:
    """Show the last readiness check of this admin's tenant, or the button to run one."""
    report = session.get(REPORT_KEY)
    if not report or report.get("tenant") != admin_user()["tenant_id"]:
        report = None
    return render_template("admin/readiness.html", report=report, permissions=readiness.WHY)


@bp.post("/readiness")
@login_required(role="admin")
def start() -> ResponseReturnValue:
    """Sign the admin in for the Graph read scopes (they may need to accept them once)."""
    user = admin_user()
    flow = extensions.identity().start_flow(
        readiness.SIGN_IN,
        account_type="work",
        login_hint=user["username"],
        tenant=user["tenant_id"],
    )
    purpose = {"purpose": "readiness", "tenant": user["tenant_id"], "admin_oid": user["oid"]}
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def finish(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Read the tenant's settings with the fresh token, keep only the checklist."""
    user = admin_user()
    if (result.tenant_id, result.oid) != (user["tenant_id"], user["oid"]):
        raise SignInRejected()
    identity = extensions.identity()
    token = identity.cached_token(result.cache_blob, result.home_account_id, readiness.SCOPES)
    if token is None:
        raise SignInRejected()
    base = current_app.config["RESOURCE_URLS"].get(GRAPH, GRAPH)
    graph = readiness.Graph(identity.http, base, token.access_token, identity.settings.http_timeout)
    report: readiness.Report | None = None
    try:
        report = readiness.check(
            graph,
            identity.settings.client_id,
            "Connector Consent Portal",
            all_connectors(),
            _requesters(user["tenant_id"]),
        )
        checks, problem = report.checks, ""
    except GraphUnavailable as error:
        checks, problem = [], str(error)
    problems = sum(check.status == "problem" for check in checks)
    audit.readiness_checked(
        db.session,
        user["username"],
        user["tenant_id"],
        problems,
        problem,
        seen=audit.ConsentSeen(report.consent_policies, report.assignment_required)
        if report
        else None,
    )
    db.session.commit()
    session[REPORT_KEY] = {
        "tenant": user["tenant_id"],
        "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "checks": readiness.as_dicts(checks),
        "problem": problem,
    }
    return redirect(url_for("readiness.show"), code=303)


FINISHERS = {"readiness": finish}


def _requesters(tenant_id: str) -> dict[str, str]:
    """Return the tenant's pending requesters by object id."""
    people: dict[str, str] = {}
    for found in records.pending_in(db.session, tenant_id):
        people |= {p.oid: p.username for p in records.requesters(db.session, found.id)}
    return people
