"""The landing page of a helpdesk link: say what will happen, then start it on a POST."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import Connector
from app.errors import AccountTypeNotSupported
from app.helpdesk import link_events
from app.helpdesk import link_fields
from app.helpdesk import link_owner
from app.identity import flows
from app.identity.signins import TENANT_DOMAIN_KEY
from app.identity.signins import SignIn
from app.models import Connection
from app.models import HelpdeskLink
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web import finishers

bp = Blueprint("landing", __name__)


@bp.get("/l/<path:token>")
def show(token: str) -> ResponseReturnValue:
    """Say in plain words what the link will do; an unusable link gets the one clear page."""
    link = extensions.links().find_usable(db.session, token)
    if link is None:
        return unusable()
    link_events.opened(db.session, link)
    connection = db.session.get(Connection, link.connection_id) if link.connection_id else None
    return render_template(
        "landing/show.html",
        link=link,
        token=token,
        connector=extensions.connectors().get(link.connector or ""),
        connection=connection,
        admin_url=_admin_url(),
        request_url=_request_url(link),
    )


@bp.post("/l/<path:token>")
def start(token: str) -> ResponseReturnValue:
    """Send the person to Microsoft with the link's login hint; nothing starts for a bad link."""
    link = extensions.links().find_usable(db.session, token)
    if link is None or link.kind not in link_fields.FLOW_KINDS:
        return unusable()
    connector = extensions.connectors().get(link.connector or "")
    if connector is None:
        return unusable()
    purpose = _purpose(link, connector)
    tenant = link.tenant if link_fields.is_tenant_id(link.tenant) else None
    if link.tenant and tenant is None and purpose["account_type"] != "personal":
        # A domain names the tenant too: its path lets a guest connect there (tenancy.py).
        tenant = accounts.tenant_directory().resolve(link.tenant)
    flow = extensions.identity().start_flow(
        connector,
        account_type=purpose["account_type"],
        login_hint=purpose["login_hint"],
        domain_hint=None if tenant or not link.tenant else link.tenant,
        tenant=tenant,
    )
    purpose["tenant"] = tenant  # a consent request after a refusal is filed in that tenant
    if tenant and link.tenant and not link_fields.is_tenant_id(link.tenant):
        flow[TENANT_DOMAIN_KEY] = link.tenant.lower()
    flows.remember(session, flow, purpose)
    link_events.started(db.session, link)
    return redirect(flow["auth_uri"], code=303)


def unusable() -> ResponseReturnValue:
    """Answer every expired, revoked, used, truncated or unknown link with the same page (C22)."""
    contact = current_app.config.get("HELPDESK_CONTACT") or ""
    return render_template("landing/unusable.html", contact=contact), 404


def finish_link(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Let only the person a link was made for complete it; then it is an ordinary connect."""
    refusal = link_owner.check(db.session, str(purpose.get("link_id") or ""), result)
    if refusal is None:
        return finishers.of_app().finished["connect"](result, purpose)
    link_owner.refuse(db.session, refusal)  # nothing stored, nobody signed in to the portal
    page = render_template(
        "landing/made_for.html",
        made_for=refusal.made_for,
        signed_in_as=refusal.signed_in_as,
        connector=extensions.connectors().get(str(purpose.get("connector") or "")),
        contact=current_app.config.get("HELPDESK_CONTACT") or "",
    )
    return page, 403


FINISHERS = {"link": finish_link}


def _purpose(link: HelpdeskLink, connector: Connector) -> dict[str, Any]:
    """Return the flow's purpose: a connect flow that remembers the link it came from."""
    purpose: dict[str, Any] = {"purpose": "link", "connector": connector.id, "link_id": link.id}
    if link.kind == link_fields.RECONNECT:
        connection = db.session.get(Connection, link.connection_id or "")
        assert connection is not None  # find_usable checked it is live
        purpose |= {
            "connection_id": connection.id,
            "account_type": connection.account_type,
            "login_hint": connection.username,
        }
        return purpose
    account_type = link.account_type
    if account_type and account_type not in connector.account_types:
        raise AccountTypeNotSupported(connector.name)
    if account_type is None and connector.account_types == {"work"}:
        account_type = "work"
    return purpose | {"account_type": account_type, "login_hint": link.login_hint}


def _admin_url() -> str:
    """Return the admin console's address (built by the consent issue)."""
    if "admin.index" in current_app.view_functions:
        return url_for("admin.index")
    return "/admin"


def _request_url(link: HelpdeskLink) -> str | None:
    """Return the consent request's status page for a consent-request link."""
    if not link.consent_request_id:
        return None
    return f"/consent-requests/{link.consent_request_id}"
