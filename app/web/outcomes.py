"""Failed flows turned into the next step, and the shareable page per AADSTS code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask.typing import ResponseReturnValue

from app.connectors import IDENTIFY
from app.consent import records
from app.diagnosis import explain
from app.errors import EntraError
from app.errors import NotFound
from app.helpdesk import link_events
from app.identity import flows
from app.platform import extensions
from app.platform.extensions import db
from app.web import accounts
from app.web.accounts import all_connectors
from app.web.errors import support_block

bp = Blueprint("outcomes", __name__)
# Flows an admin runs for the portal itself: never answered with "ask your admin".
ADMIN_PURPOSES = frozenset({"admin_consent_confirm", "readiness"})
# What prompt=none answers when Entra needs the person on a page (entra-protocol 2.3).
NEEDS_A_PAGE = frozenset({"login_required", "interaction_required", "consent_required"})
# The code on Microsoft's page before "Return to the application" or "Back to app" (4.4):
# the redirect carries only 65004, so the support block names both pages.
SHOWN_PAGES = "AADSTS90094 (Need admin approval) or AADSTS90095 (Approval required)"


def failed(error: EntraError, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Render what happened at Entra, who must act and how, in one hop."""
    if purpose.get("quiet") and (error.error or "").lower() in NEEDS_A_PAGE:
        return _with_a_page(purpose)
    connector = all_connectors().get(str(purpose.get("connector") or ""))
    found = explain.diagnose(
        error.error,
        error.description,
        codes=error.codes,
        subcode=error.subcode,
        suberror=error.suberror,
        admin_consent=error.admin_consent or purpose.get("purpose") in ADMIN_PURPOSES,
        connector=connector.name if connector else None,
        account_type=purpose.get("account_type"),
    )
    user = accounts.current_user()
    person = user["username"] if user else None
    tenant = purpose.get("tenant")  # a guest's resource tenant: the request belongs there
    here = user if user is None or not tenant or user["tenant_id"] == tenant else None
    link_events.failed(db.session, purpose, found, error, person)  # the lookup and link show it
    details = support_block(error, connector=connector.name if connector else None)
    # After an approval, a second "ask your admin" would be a loop: explain instead (C15).
    after_approval = purpose.get("after_approval")
    ask = found.route == "admin_approval" and not after_approval and connector is not None
    pending = None
    if ask and here is not None and connector is not None:
        pending = records.pending_for(db.session, here["tenant_id"], connector.id)
    if ask and here is None:  # Send request's trip to Microsoft reuses the first one's hint
        session[flows.REFUSED_HINT_KEY] = purpose.get("login_hint")
        session[flows.REFUSED_TENANT_KEY] = tenant
    elif ask:
        session.pop(flows.REFUSED_TENANT_KEY, None)  # an earlier guest's refusal is over
    if ask and found.key == "consent_cancelled":
        labels = [label for label, _ in details]
        at = labels.index("AADSTS code") + 1 if "AADSTS code" in labels else len(details)
        details.insert(at, ("Shown by Microsoft", SHOWN_PAGES))
    page = render_template(
        "outcomes/admin_approval.html" if ask else "outcomes/diagnosis.html",
        diagnosis=found,
        connector=connector,
        details=details,
        user=here,
        pending=pending,
        after_approval=after_approval,
    )
    return page, 403 if ask else 400


def _with_a_page(purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Go to Microsoft again, this time letting it show its page (prompt=none failed)."""
    hint = purpose.get("login_hint")
    flow = extensions.identity().start_flow(
        IDENTIFY, account_type="work", login_hint=hint, tenant=purpose.get("tenant")
    )
    flows.remember(session, flow, {key: v for key, v in purpose.items() if key != "quiet"})
    return redirect(flow["auth_uri"], code=303)


FAILURE = failed  # what every failed flow shows, whoever started it


@bp.get("/help/aadsts/<int:code>")
def aadsts(code: int) -> ResponseReturnValue:
    """Show the diagnosis for one AADSTS code, for sharing with a colleague.

    ?at=refresh explains it as a stored connection's refresh error rather than a sign-in's.
    """
    if code > 99_999_999:
        raise NotFound()
    at_refresh = request.args.get("at") == "refresh"
    found = explain.diagnose(None, f"AADSTS{code}", at_refresh=at_refresh)
    return render_template(
        "outcomes/diagnosis.html",
        diagnosis=found,
        connector=None,
        details=None,
        user=accounts.current_user(),
        shared=True,
    )
