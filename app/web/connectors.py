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
from app.identity import tenancy
from app.identity.signins import TENANT_DOMAIN_KEY
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
    check = access_check(connector) if request.args.get("check") else None
    return _page(connector, check, guest_domain=tenancy.clean(request.args.get("domain_hint")))


def _page(
    connector: Connector,
    check: dict[str, object] | None,
    *,
    guest_domain: str | None = None,
    tenant_error: str | None = None,
    typed: str = "",
) -> str:
    """Render the Authenticate page; a domain preselects "an organization you are a guest in"."""
    user = accounts.current_user()
    return render_template(
        "connectors/show.html",
        connector=connector,
        user=user,
        check=check,
        guest_domain=guest_domain,
        tenant_error=tenant_error,
        typed=typed,
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
    typed = (request.form.get("domain_hint") or "").strip()[:254]
    tenant, domain = None, tenancy.clean(typed)
    if request.form.get("tenant_choice") == "guest" and account_type != "personal":
        tenant = accounts.tenant_directory().resolve(domain)
        if tenant is None:
            return _tenant_problem(connector, typed, domain)
    flow = extensions.identity().start_flow(
        connector,
        account_type=account_type,
        login_hint=hint,
        # organizations or consumers as a hint; a tenant's domain names the authority instead
        domain_hint=None if tenant or domain else typed or None,
        tenant=tenant,
    )
    purpose = {
        "purpose": "connect",
        "connector": connector.id,
        "account_type": account_type,
        "login_hint": hint,  # a request sent after a refusal signs in as the same person
        "tenant": tenant,  # a guest's resource tenant: a request after a refusal goes there
    }
    if tenant and domain:
        flow[TENANT_DOMAIN_KEY] = domain
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def _tenant_problem(connector: Connector, typed: str, domain: str | None) -> ResponseReturnValue:
    """Show the Authenticate page again, saying why the organization was not found."""
    if not typed:
        error = "Type the domain of the organization you are a guest in, such as contoso.com."
    elif domain is None:
        error = "That doesn't look like a domain. Type one such as contoso.com."
    else:
        error = (
            f"Microsoft doesn't know an organization with the domain {domain}. Check the "
            "spelling, or ask the person who invited you for the organization's domain."
        )
    page = _page(connector, None, guest_domain=domain, tenant_error=error, typed=typed)
    return page, 400


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
