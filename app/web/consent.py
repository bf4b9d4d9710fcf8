"""Consent requests: send one from Admin approval required, follow its status, try again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import SIGN_IN
from app.consent import access
from app.consent import filing
from app.consent import notices
from app.consent import records
from app.identity import flows
from app.identity.signins import SignIn
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web.accounts import find
from app.web.accounts import login_required

bp = Blueprint("consent", __name__, url_prefix="/consent-requests")


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
    return _file(user, connector.id, justification)


def finish_sign_in(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Sign the requester in, then file the request they asked to send."""
    accounts.sign_in_as(result)
    user = accounts.current_user()
    assert user is not None
    return _file(user, str(purpose.get("connector")), str(purpose.get("why") or ""))


FINISHERS = {"consent_request": finish_sign_in}


def _file(user: Mapping[str, Any], connector_id: str, justification: str) -> ResponseReturnValue:
    """File the request as this account and show its status."""
    who = records.Requester(user["oid"], user["username"], user["tenant_id"], justification)
    found = filing.file_request(
        db.session,
        extensions.notifier(),
        current_app.config["PUBLIC_URL"],
        who,
        find(connector_id),
        int(current_app.config["CONSENT_REQUEST_DAYS"]),
    )
    return redirect(url_for("consent.show", request_id=found.id), code=303)


@bp.get("/<request_id>")
@login_required
def show(request_id: str) -> ResponseReturnValue:
    """Show a request's status to its requesters, the tenant's admins and the helpdesk."""
    config = current_app.config
    user = accounts.current_user()
    assert user is not None
    found, role = access.visible(
        db.session, request_id, user, config["ADMIN_USERS"], config["HELPDESK_USERS"]
    )
    if records.expire_due(db.session, tenant_id=found.tenant_id, connector=found.connector):
        db.session.commit()
    people = records.requesters(db.session, found.id)
    if role == "requester":
        people = [p for p in people if p.oid == user["oid"]]
    return render_template(
        "consent/show.html",
        request=found,
        connector=find(found.connector),
        role=role,
        people=people,
        status=records.STATUS_LABELS[found.status],
        share_url=notices.status_url(config["PUBLIC_URL"], found),
    )


@bp.get("/<request_id>/try-again")
def try_again_page(request_id: str) -> ResponseReturnValue:
    """Show the Try again page: the approved connector with its Authenticate button."""
    found = records.approved(db.session, request_id)
    return render_template("consent/try_again.html", request=found, connector=find(found.connector))


@bp.post("/<request_id>/try-again")
def try_again(request_id: str) -> ResponseReturnValue:
    """Start the connector's flow again, marked as a retry after approval (no second request)."""
    found = records.approved(db.session, request_id)
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
