"""The connector list and each connector's Authenticate page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask.typing import ResponseReturnValue

from app.connectors import Connector
from app.connectors import scope_words
from app.consent import audit
from app.consent import records
from app.consent import user_consent
from app.errors import AccountTypeNotSupported
from app.identity import flows
from app.platform import extensions
from app.platform.extensions import db
from app.tokens import inventory
from app.web import accounts
from app.web.accounts import all_connectors
from app.web.accounts import find

bp = Blueprint("connectors", __name__)
ACCOUNT_TYPES = {"work": "Work or school account", "personal": "Personal Microsoft account"}


@bp.app_template_filter("scope_words")
def scope_words_filter(scope: str) -> str:
    """Return Microsoft's consent-page words for a scope, for any page that lists scopes."""
    return scope_words(scope)


@bp.get("/")
def index() -> ResponseReturnValue:
    """List the connectors."""
    return render_template("connectors/index.html", connectors=all_connectors().values())


@bp.get("/connectors/<connector_id>")
def show(connector_id: str) -> ResponseReturnValue:
    """Show the Authenticate page, with the Check access results when asked."""
    connector = find(connector_id)
    user = accounts.current_user()
    check = access_check(connector) if request.args.get("check") else None
    return render_template(
        "connectors/show.html",
        connector=connector,
        user=user,
        check=check,
        account_types=ACCOUNT_TYPES,
        personal_blocked=bool(
            user
            and user["account_type"] == "personal"
            and "personal" not in connector.account_types
        ),
    )


@bp.post("/connectors/<connector_id>/authenticate")
def authenticate(connector_id: str) -> ResponseReturnValue:
    """Start the sign-in and consent flow for this connector at Entra."""
    connector = find(connector_id)
    account_type = chosen_account_type(connector, request.form.get("account_type"))
    hint = accounts.login_hint(request.form)
    flow = extensions.identity().start_flow(
        connector,
        account_type=account_type,
        login_hint=hint,
        domain_hint=request.form.get("domain_hint") or None,
    )
    purpose = {
        "purpose": "connect",
        "connector": connector.id,
        "account_type": account_type,
        "login_hint": hint,  # a request sent after a refusal signs in as the same person
    }
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def chosen_account_type(connector: Connector, chosen: str | None) -> str | None:
    """Return the account type to sign in with, explaining unsupported choices."""
    user = accounts.current_user()
    if chosen not in ACCOUNT_TYPES:
        chosen = None
    if chosen is None and user and user["account_type"] == "personal":
        chosen = "personal"  # a personal account is signed in: it is the one they will use
    if chosen and chosen not in connector.account_types:
        raise AccountTypeNotSupported(connector.name)
    if chosen is None and connector.account_types == {"work"}:
        return "work"
    return chosen


def access_check(connector: Connector) -> dict[str, object]:
    """Return what the portal knows about whether this person can authenticate."""
    user = accounts.current_user()
    tenant = user["tenant_id"] if user else ""
    consents = records.tenant_consents(db.session, tenant) if user else {}
    pending = records.pending_for(db.session, tenant, connector.id) if user else None
    existing = inventory.active_for(db.session, user, connector.id) if user else None
    return {
        "idp_ok": extensions.identity().check(),
        "account_types": [
            label for key, label in ACCOUNT_TYPES.items() if key in connector.account_types
        ],
        "personal_blocked": bool(
            user
            and user["account_type"] == "personal"
            and "personal" not in connector.account_types
        ),
        "user": user,
        "existing": existing,
        "tenant_consent": consents.get(connector.id),
        "pending_request": pending,
        "self_consent": self_consent(connector, user)
        if not consents.get(connector.id) and not (existing and existing.status == "active")
        else None,
    }


def self_consent(
    connector: Connector, user: dict[str, Any] | None
) -> tuple[user_consent.Split, audit.ConsentSeen] | None:
    """Return who may grant the connector's scopes in the user's tenant, when a check saw it."""
    if not user or user["account_type"] == "personal":
        return None  # no tenant policy applies to personal accounts; unknown before sign-in
    seen = audit.consent_seen(db.session, user["tenant_id"])
    if seen is None:
        return None  # say only what is known
    found = user_consent.split(
        seen.policies, connector.scopes, assignment_required=seen.assignment_required
    )
    return found, seen
