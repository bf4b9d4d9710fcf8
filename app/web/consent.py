"""Consent requests: send one from Admin approval required, follow its status, try again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import SIGN_IN
from app.connectors import Connector
from app.consent import notices
from app.consent import records
from app.identity import flows
from app.identity import roles
from app.identity.entra import SignIn
from app.models import ConsentRequest
from app.notify.deliveries import Notifier
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web.connectors import find

bp = Blueprint("consent", __name__, url_prefix="/consent-requests")


def notifier() -> Notifier:
    """Return this app's notifier."""
    return extensions.notifier()


@bp.post("")
def create() -> ResponseReturnValue:
    """Send (or join) the approval request for a connector; sign in first when needed."""
    connector = find(request.form.get("connector", ""))
    justification = request.form.get("justification", "")[: records.MAX_JUSTIFICATION]
    user = accounts.current_user()
    if user is None:  # Entra's error redirect says nothing about who was turned away
        flow = extensions.identity().start_flow(SIGN_IN, account_type="work")
        purpose = {"purpose": "consent_request", "connector": connector.id, "why": justification}
        flows.remember(session, flow, purpose)
        return redirect(flow["auth_uri"], code=303)
    return _file(user, connector, justification)


def finish_sign_in(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Sign the requester in, then file the request they asked to send."""
    accounts.sign_in_as(result)
    user = accounts.current_user()
    assert user is not None
    return _file(user, find(str(purpose.get("connector"))), str(purpose.get("why") or ""))


def _file(user: Mapping[str, Any], connector: Connector, justification: str) -> ResponseReturnValue:
    """Create or join the open request, tell the admins about a new one, show its status."""
    if user["tenant_id"] == roles.MSA_TENANT:
        abort(400, "Personal Microsoft accounts have no administrator to ask.")
    who = records.Requester(user["oid"], user["username"], user["tenant_id"], justification)
    days = int(current_app.config["CONSENT_REQUEST_DAYS"])
    found, created = records.open_request(db.session, who, connector.id, connector.scopes, days)
    if created:
        admins = records.known_admins(db.session, found.tenant_id)
        mails = notices.to_admins(
            current_app.config["PUBLIC_URL"],
            found,
            connector.name,
            user["username"],
            justification.strip(),
            admins,
        )
        notifier().queue(db.session, "consent_request.created", event_data(found), mails)
    db.session.commit()
    notifier().kick()
    return redirect(url_for("consent.show", request_id=found.id), code=303)


def event_data(found: ConsentRequest) -> dict[str, Any]:
    """Return a request as webhook data (no justifications: they may be personal)."""
    return {
        "id": found.id,
        "tenant_id": found.tenant_id,
        "connector": found.connector,
        "scopes": found.scopes.split(),
        "status": found.status,
        "url": notices.status_url(current_app.config["PUBLIC_URL"], found),
        "decided_by": found.decided_by,
        "reason": found.reason,
        "requesters": [r.username for r in records.requesters(db.session, found.id)],
    }


def viewer_role(found: ConsentRequest, user: Mapping[str, Any]) -> str | None:
    """Return how this account may see the request: admin, helpdesk, requester, or None."""
    config = current_app.config
    same_tenant = user["tenant_id"] == found.tenant_id
    if same_tenant and roles.admin_basis(user, config["ADMIN_USERS"]):
        return "admin"
    if roles.in_scope(found.tenant_id, roles.helpdesk_scope(user, config["HELPDESK_USERS"])):
        return "helpdesk"  # the operator's own helpdesk sees every tenant, the app role its own
    if same_tenant and any(r.oid == user["oid"] for r in records.requesters(db.session, found.id)):
        return "requester"
    return None


def visible(request_id: str) -> tuple[ConsentRequest, str]:
    """Return the request and the viewer's role, or answer 404 to everyone else."""
    user = accounts.current_user()
    found = db.session.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    role = viewer_role(found, user) if found is not None and user is not None else None
    if found is None or role is None:
        abort(404)  # the same answer whether the request exists or not
    return found, role


@bp.get("/<request_id>")
@accounts.login_required
def show(request_id: str) -> ResponseReturnValue:
    """Show a request's status to its requesters, the tenant's admins and the helpdesk."""
    found, role = visible(request_id)
    if records.expire_due(db.session, tenant_id=found.tenant_id, connector=found.connector):
        db.session.commit()
    people = records.requesters(db.session, found.id)
    user = accounts.current_user()
    assert user is not None
    if role == "requester":
        people = [p for p in people if p.oid == user["oid"]]
    return render_template(
        "consent/show.html",
        request=found,
        connector=find(found.connector),
        role=role,
        people=people,
        status=records.STATUS_LABELS[found.status],
        share_url=notices.status_url(current_app.config["PUBLIC_URL"], found),
    )


@bp.get("/<request_id>/try-again")
def try_again_page(request_id: str) -> ResponseReturnValue:
    """Show the Try again page: the approved connector with its Authenticate button."""
    found = _approved(request_id)
    return render_template("consent/try_again.html", request=found, connector=find(found.connector))


@bp.post("/<request_id>/try-again")
def try_again(request_id: str) -> ResponseReturnValue:
    """Start the connector's flow again, marked as a retry after approval (no second request)."""
    found = _approved(request_id)
    connector = find(found.connector)
    user = accounts.current_user()
    flow = extensions.identity().start_flow(
        connector, account_type="work", login_hint=user["username"] if user else None
    )
    purpose = {
        "purpose": "connect",
        "connector": connector.id,
        "account_type": "work",
        "after_approval": found.id,
    }
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def _approved(request_id: str) -> ConsentRequest:
    """Return an approved request, or answer 404."""
    found = db.session.get(ConsentRequest, request_id) if len(request_id) <= 36 else None
    if found is None or found.status != "approved":
        abort(404)
    return found
