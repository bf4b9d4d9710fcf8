"""Sign in, the one callback that finishes every flow, and sign out."""

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
from app.errors import ConsentNotVerified
from app.errors import EntraError
from app.errors import SignInExpired
from app.identity import flows
from app.identity import roles
from app.identity import tenancy
from app.identity.signins import TENANT_DOMAIN_KEY
from app.identity.signins import SignIn
from app.platform import extensions
from app.platform import metrics
from app.web import accounts
from app.web import finishers
from app.web.urls import local_path

bp = Blueprint("auth", __name__)


@bp.get("/sign-in")
def sign_in() -> ResponseReturnValue:
    """Show the Sign in page."""
    next_path = local_path(request.args.get("next"), url_for("connectors.index"))
    guest = tenancy.clean(request.args.get("domain_hint"))
    return render_template("auth/sign_in.html", next_path=next_path, typed=guest or "")


@bp.post("/sign-in")
def start_sign_in() -> ResponseReturnValue:
    """Send the person to Entra to sign in to the portal."""
    next_path = local_path(request.form.get("next"), url_for("connectors.index"))
    typed = (request.form.get("domain_hint") or "").strip()[:254]
    # A guest signs in at the resource tenant's path: the portal then acts in that tenant
    # (its admin console, readiness, helpdesk scope). Without a domain: the home tenant.
    tenant = accounts.tenant_directory().resolve(typed) if typed else None
    if typed and tenant is None:
        error = (
            f"Microsoft doesn't know an organization with the domain {typed}. Check the "
            "spelling, or leave the field empty to sign in to your own organization."
        )
        page = render_template("auth/sign_in.html", next_path=next_path, typed=typed, error=error)
        return page, 400
    flow = extensions.identity().start_flow(
        SIGN_IN, account_type=None, login_hint=accounts.login_hint(request.form), tenant=tenant
    )
    if tenant:
        flow[TENANT_DOMAIN_KEY] = tenancy.clean(typed) or ""
    flows.remember(session, flow, {"purpose": "sign_in", "next": next_path})
    return redirect(flow["auth_uri"], code=303)


@bp.get("/account")
@accounts.login_required
def account() -> ResponseReturnValue:
    """Show who is signed in, with the tenant-id/object-id pair the staff settings name."""
    user = accounts.current_user()
    assert user is not None
    return render_template(
        "auth/account.html",
        user=user,
        pair=roles.staff_id(user),
        personal=user.get("tenant_id") == roles.MSA_TENANT,
        admin=accounts.is_admin(),
        helpdesk=accounts.is_helpdesk(),
    )


@bp.get("/auth/callback")
def callback() -> ResponseReturnValue:
    """Finish whatever flow this state belongs to; the stored flow is single-use."""
    query = flows.checked_query(request.args)
    flow, purpose = flows.take(session, query.get("state"), current_app.config["FLOW_TTL"])
    if flow is None:
        if "admin_consent" in query or "tenant" in query:  # a forged or stale consent (C13)
            raise ConsentNotVerified()
        raise SignInExpired()
    areas = finishers.of_app()
    returned = areas.returned.get(str(purpose.get("purpose")))
    if returned is not None:  # /adminconsent answers without a code
        return returned(query, purpose)
    try:
        result = extensions.identity().finish_flow(flow, query)
    except EntraError as error:  # Entra said no: turn it into the next step for someone
        metrics.flow_finished(error.aadsts)
        assert areas.failed is not None
        return areas.failed(error, purpose)
    metrics.flow_finished()
    finish = areas.finished.get(str(purpose.get("purpose")), areas.finished["connect"])
    return finish(result, purpose)


def _signed_in(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Sign the person in to the portal and go where they were heading."""
    accounts.sign_in_as(result)
    return redirect(local_path(purpose.get("next"), url_for("connectors.index")), code=303)


FINISHERS = {"sign_in": _signed_in}


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    """Destroy the server-side session, then end the Entra session too."""
    session.clear()
    accounts.renew_session_id()  # the old id is deleted from the store, not just emptied (C18)
    # The return address is registered at Entra and built from configuration, never from Host.
    back = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("auth.signed_out")
    target = extensions.identity().logout_url(back)
    return redirect(target or url_for("auth.signed_out"), code=303)


@bp.get("/signed-out")
def signed_out() -> ResponseReturnValue:
    """Confirm that the portal and Microsoft sessions have ended."""
    return render_template("auth/signed_out.html")
