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

from app.connectors import IDENTIFY
from app.connectors import Connector
from app.consent import access
from app.consent import filing
from app.consent import notices
from app.consent import records
from app.diagnosis.catalogue import APP_IN_ADMIN_CENTER
from app.diagnosis.catalogue import CONSENT_ROLES
from app.identity import flows
from app.identity.signins import SignIn
from app.models import ConsentRequest
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web.accounts import all_connectors
from app.web.accounts import find
from app.web.accounts import login_required

bp = Blueprint("consent", __name__, url_prefix="/consent-requests")


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """List the signed-in person's consent requests: My requests."""
    user = accounts.current_user()
    assert user is not None
    if records.expire_due(db.session, tenant_id=user["tenant_id"]):
        db.session.commit()
    mine = records.of_requester(db.session, user["tenant_id"], user["oid"])
    public = current_app.config["PUBLIC_URL"]
    return render_template(
        "consent/index.html",
        requests=[(found, find_or_none(found.connector)) for found in mine],
        labels=records.STATUS_LABELS,
        links={found.id: notices.status_url(public, found) for found in mine},
    )


@bp.post("")
def create() -> ResponseReturnValue:
    """Send (or join) the approval request for a connector; sign in first when needed."""
    connector = find(request.form.get("connector", ""))
    justification = request.form.get("justification", "").strip()[: records.MAX_JUSTIFICATION]
    if not justification:  # admins decide on the reason; an empty request helps nobody
        page = render_template("consent/justify.html", connector=connector, missing=True)
        return page, 400
    user = accounts.current_user()
    tenant = session.get(flows.REFUSED_TENANT_KEY)  # a guest asks in the resource tenant
    if user is None or (tenant and user["tenant_id"] != tenant):
        # Entra's error redirect says nothing about who was turned away
        hint = session.get(flows.REFUSED_HINT_KEY)
        flow = extensions.identity().start_flow(
            IDENTIFY, account_type="work", login_hint=hint, prompt="none", tenant=tenant
        )
        purpose = {
            "purpose": "consent_request",
            "connector": connector.id,
            "why": justification,
            "quiet": True,  # Entra's answer without a page falls back to one (outcomes)
            "login_hint": hint,
            "tenant": tenant,
        }
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


def find_or_none(connector_id: str) -> Connector | None:
    """Return a connector by id, or None when this deployment no longer has it."""
    return all_connectors().get(connector_id)


@bp.app_context_processor
def pending_requests() -> dict[str, Any]:
    """Offer every page the signed-in person's pending requests (My connections shows them)."""

    def mine() -> list[tuple[ConsentRequest, Connector | None]]:
        """Return the person's pending requests with their connectors."""
        user = accounts.current_user()
        if user is None:
            return []
        found = records.of_requester(db.session, user["tenant_id"], user["oid"], pending_only=True)
        return [(row, find_or_none(row.connector)) for row in found]

    return {"my_pending_requests": mine}


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
        reach=notices.reach(db.session, extensions.notifier().settings, found.tenant_id),
        consent_roles=CONSENT_ROLES,
        admin_center_path=APP_IN_ADMIN_CENTER,
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
        connector,
        account_type="work",
        login_hint=user["username"] if user else None,
        tenant=found.tenant_id,  # the tenant that approved: a guest's resource tenant too
    )
    purpose = {
        "purpose": "connect",
        "connector": connector.id,
        "account_type": "work",
        "after_approval": found.id,
        "tenant": found.tenant_id,
    }
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)
