"""Approve and Grant for organization: admin consent at Entra, verified, then confirmed.

The way back from /adminconsent carries no code and `admin_consent=True` even on errors, and
its `tenant` can be forged (entra-protocol §2.5, pitfall 14). So the return is trusted only
with a state this admin's session stored, it is read error-first, its tenant must be the
admin's own, and the consent is recorded only after a token request proves it: a prompt=none
sign-in of the same admin, in that tenant, for exactly the connector's scopes. Entra issues that
code only when no consent is missing; its ID token (signature, issuer, tid, oid checked) says
it is the same admin in the same tenant. The tokens of that check are thrown away.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import GRAPH
from app.connectors import Connector
from app.consent import decisions
from app.consent import readiness
from app.consent import records
from app.consent import withdrawal
from app.diagnosis import explain
from app.errors import GraphUnavailable
from app.errors import SignInRejected
from app.identity import flows
from app.identity.signins import CREATED_KEY
from app.identity.signins import SignIn
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web.accounts import admin_user
from app.web.accounts import find
from app.web.accounts import login_required

bp = Blueprint("grant", __name__, url_prefix="/admin")


@bp.post("/requests/<request_id>/approve")
@login_required(role="admin")
def approve(request_id: str) -> ResponseReturnValue:
    """Send the admin to Entra's admin consent for exactly this request's connector."""
    found = records.own_pending(db.session, request_id, admin_user()["tenant_id"])
    return _start(find(found.connector), found.id)


@bp.post("/connectors/<connector_id>/grant")
@login_required(role="admin")
def grant(connector_id: str) -> ResponseReturnValue:
    """Grant one connector for the whole organization, without a request."""
    return _start(find(connector_id), None)


def _start(connector: Connector, request_id: str | None) -> ResponseReturnValue:
    """Store a state bound to this admin's session and redirect to /{tenant}/v2.0/adminconsent."""
    user = admin_user()
    state = secrets.token_urlsafe(32)
    purpose = {
        "purpose": "admin_consent",
        "connector": connector.id,
        "tenant": user["tenant_id"],
        "admin_oid": user["oid"],
        "request_id": request_id,
    }
    flows.remember(session, {"state": state, CREATED_KEY: time.time()}, purpose)
    url = extensions.identity().admin_consent_url(user["tenant_id"], connector.scopes, state)
    return redirect(url, code=303)


def returned(query: Mapping[str, str], purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Check an admin-consent return error-first, then confirm it with a token request."""
    user = _same_admin(purpose)
    connector = find(str(purpose["connector"]))
    if query.get("error"):  # admin_consent=True comes back on errors too: it proves nothing
        return _not_granted(connector, query)
    if query.get("tenant", "").lower() != str(purpose["tenant"]).lower():
        return _wrong_tenant(connector)
    if not set(connector.scopes) <= set(query.get("scope", "").split()):
        return _not_granted(connector, {"error": "consent_required"})
    flow = extensions.identity().start_flow(
        connector,
        account_type="work",
        login_hint=user["username"],
        prompt="none",  # no page: Entra answers with a code only if the consent now exists
        tenant=str(purpose["tenant"]),
    )
    flows.remember(session, flow, dict(purpose) | {"purpose": "admin_consent_confirm"})
    return redirect(flow["auth_uri"], code=303)


def confirmed(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Record the consent proven by the confirming sign-in, approve and tell everyone."""
    user = _same_admin(purpose)
    if (result.tenant_id, result.oid) != (purpose["tenant"], user["oid"]):
        raise SignInRejected()  # another account answered the confirmation: record nothing
    connector = find(str(purpose["connector"]))
    done = decisions.grant(
        db.session,
        extensions.notifier(),
        current_app.config["PUBLIC_URL"],
        str(purpose["tenant"]),
        connector,
        str(user["username"]),
    )
    flash(f"{connector.name} is granted for your organization ({done.consent.scopes}).", "success")
    if done.request is not None:
        return redirect(url_for("consent.show", request_id=done.request.id), code=303)
    return redirect(url_for("admin.index"), code=303)


def _same_admin(purpose: Mapping[str, Any]) -> dict[str, Any]:
    """Return the signed-in admin who started this consent, or reject the return."""
    user = accounts.current_user()
    if user is None or user["oid"] != purpose.get("admin_oid"):
        raise SignInRejected()
    if user["tenant_id"] != purpose.get("tenant"):
        raise SignInRejected()
    return user


def _not_granted(connector: Connector, query: Mapping[str, str]) -> ResponseReturnValue:
    """Show that nothing was granted (declined, cancelled or not permitted); record nothing."""
    found = explain.diagnose(
        query.get("error"),
        query.get("error_description"),
        admin_consent=True,
        connector=connector.name,
    )
    page = render_template(
        "outcomes/diagnosis.html", diagnosis=found, connector=connector, details=None, user=None
    )
    return page, 400


def _wrong_tenant(connector: Connector) -> ResponseReturnValue:
    """Refuse a consent that came back for another tenant than the admin's."""
    page = render_template("admin/wrong_tenant.html", connector=connector)
    return page, 400


@bp.get("/connectors/<connector_id>/withdraw")
@login_required(role="admin")
def confirm_withdraw(connector_id: str) -> ResponseReturnValue:
    """Ask before withdrawing a tenant-wide consent, and say which permission it will ask for."""
    connector = find(connector_id)
    granted = records.tenant_consents(db.session, admin_user()["tenant_id"]).get(connector.id)
    if granted is None:
        flash(f"{connector.name} is not granted for your organization.", "error")
        return redirect(url_for("admin.index"), code=303)
    return render_template(
        "admin/withdraw.html", connector=connector, granted=granted, permissions=withdrawal.WHY
    )


@bp.post("/connectors/<connector_id>/withdraw")
@login_required(role="admin")
def withdraw(connector_id: str) -> ResponseReturnValue:
    """Sign the admin in for the grant-changing permission, then withdraw at Graph."""
    connector, user = find(connector_id), admin_user()
    flow = extensions.identity().start_flow(
        withdrawal.SIGN_IN,
        account_type="work",
        login_hint=user["username"],
        tenant=user["tenant_id"],
    )
    purpose = {
        "purpose": "withdraw_consent",
        "connector": connector.id,
        "tenant": user["tenant_id"],
        "admin_oid": user["oid"],
    }
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def withdrawn(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Take the connector's scopes out of the tenant-wide grant with the fresh token; audit it."""
    user = _same_admin(purpose)
    if (result.tenant_id, result.oid) != (purpose["tenant"], user["oid"]):
        raise SignInRejected()
    connector = find(str(purpose["connector"]))
    identity = extensions.identity()
    token = identity.cached_token(result.cache_blob, result.home_account_id, withdrawal.SCOPES)
    if token is None:
        raise SignInRejected()
    base = current_app.config["RESOURCE_URLS"].get(GRAPH, GRAPH)
    graph = readiness.Graph(identity.http, base, token.access_token, identity.settings.http_timeout)
    try:
        at_graph = withdrawal.withdraw_at_graph(graph, identity.settings.client_id, connector)
    except GraphUnavailable as error:  # nothing changed here: the record still says granted
        flash(f"{connector.name} was not withdrawn: Microsoft Graph said no ({error}).", "error")
        return redirect(url_for("admin.index"), code=303)
    withdrawal.forget(db.session, str(purpose["tenant"]), connector.id, user["username"], at_graph)
    db.session.commit()
    flash(
        f"{connector.name} is no longer granted for your organization: "
        f"{withdrawal.RESULTS[at_graph]}.",
        "success",
    )
    return redirect(url_for("admin.index"), code=303)


# The flows this area starts: the consent's return (no code), then the confirming sign-in;
# the sign-in that withdraws a consent.
RETURNS = {"admin_consent": returned}
FINISHERS = {"admin_consent_confirm": confirmed, "withdraw_consent": withdrawn}
