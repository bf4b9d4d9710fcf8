"""Helpdesk tools: sharing links (create, hand out, revoke) and the troubleshooter."""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import quote

import segno
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.diagnosis import paste
from app.helpdesk import link_events
from app.helpdesk import link_fields
from app.helpdesk import links
from app.identity import roles
from app.models import HelpdeskLink
from app.platform import extensions
from app.platform.extensions import csrf
from app.platform.extensions import db
from app.web import accounts
from app.web import held

bp = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")
csrf.exempt(bp)  # checked in guard() after the role, so a forged POST by a non-helpdesk is a 403
log = logging.getLogger(__name__)


def guard() -> ResponseReturnValue | None:
    """Let only the helpdesk in (403 for everyone else), then check the CSRF token."""
    user = accounts.current_user()
    if user is None and request.method == "GET":
        return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
    if not roles.is_helpdesk(user, _members()):
        who = (user or {}).get("username") or "anonymous"
        log.warning("helpdesk access refused: %s %s by %s", request.method, request.path, who)
        abort(403)
    if request.method == "POST":
        csrf.protect()
    return None


bp.before_request(guard)


@bp.app_context_processor
def _menu() -> dict[str, bool]:
    """Tell every page whether to show the Helpdesk menu entry."""
    return {"helpdesk_member": roles.is_helpdesk(accounts.current_user(), _members())}


def _members() -> list[str]:
    """Return the operator's helpdesk usernames (PORTAL_HELPDESK_USERS)."""
    return list(current_app.config.get("HELPDESK_USERS") or ())


def staff() -> str:
    """Return the signed-in helpdesk member's username."""
    user = accounts.current_user()
    assert user is not None
    return str(user["username"])


def staff_tenant() -> str:
    """Return the signed-in helpdesk member's tenant id (the tenant of the links they make)."""
    user = accounts.current_user()
    assert user is not None
    return str(user["tenant_id"])


def scope() -> frozenset[str] | None:
    """Return the tenants the signed-in helpdesk member may see and act on (None: every one)."""
    found = roles.helpdesk_scope(accounts.current_user(), _members())
    if found == frozenset():
        abort(403)  # guard() let nobody else in; never treat "no tenant" as "every tenant"
    return found


@bp.get("")
def index() -> ResponseReturnValue:
    """Show the link form, the newest links and the user lookup."""
    return render_template(
        "helpdesk/index.html",
        links=links.recent(db.session, scope()),
        status=links.status,
        kinds=link_fields.KINDS,
        connectors=_connectors(),
        max_days=current_app.config["LINK_MAX_DAYS"],
        form=request.args,
    )


@bp.post("/links")
def create_link() -> ResponseReturnValue:
    """Create a sharing link and show it once."""
    form = request.form
    try:
        made = extensions.links().create(
            db.session,
            kind=form.get("kind", ""),
            created_by=staff(),
            tenant_id=staff_tenant(),
            scope=scope(),
            connector=form.get("connector") or None,
            login_hint=form.get("login_hint"),
            tenant=form.get("tenant"),
            account_type=form.get("account_type"),
            connection_id=form.get("connection_id"),
            consent_request_id=form.get("consent_request_id"),
            days=_days(form.get("days")),
            multi_use=form.get("multi_use") == "on",
            note=form.get("note"),
        )
    except link_fields.LinkRefused as refused:
        flash(f"The link was not created: {refused}")
        return redirect(url_for("helpdesk.index"), code=303)
    return reveal(made)


def reveal(made: links.NewLink) -> ResponseReturnValue:
    """Remember a new link's URL, sealed, for one showing and go to its page."""
    held.keep_for_reveal(session, made.link.id, made.url, kind="link")
    return redirect(url_for("helpdesk.show_link", link_id=made.link.id), code=303)


@bp.get("/links/<link_id>")
def show_link(link_id: str) -> ResponseReturnValue:
    """Show a link's status and events; right after creation, its URL, QR code and e-mail."""
    link = _link(link_id)
    url = held.reveal(session, link.id, kind="link")
    return render_template(
        "helpdesk/link.html",
        link=link,
        status=links.status(link),
        events=link_events.events(db.session, link),
        kinds=link_fields.KINDS,
        connector=_connectors().get(link.connector or ""),
        url=url,
        qr=segno.make(url, error="m").svg_data_uri(scale=5, border=2) if url else None,
        mail=_mail(link, url) if url else None,
    )


@bp.post("/links/<link_id>/revoke")
def revoke_link(link_id: str) -> ResponseReturnValue:
    """Revoke a link."""
    link = _link(link_id)
    links.revoke(db.session, link, staff())
    flash("The link was revoked. Whoever opens it now is told to contact the helpdesk.")
    return redirect(url_for("helpdesk.show_link", link_id=link.id), code=303)


@bp.route("/troubleshoot", methods=["GET", "POST"])
def troubleshoot() -> ResponseReturnValue:
    """Read a pasted AADSTS code, Entra message or support block and show the diagnosis."""
    text = (request.form.get("text") or "")[: paste.MAX_PASTE]
    parsed = paste.parse_error_text(text) if text.strip() else None
    found = parsed.diagnose() if parsed is not None and parsed.found else None
    if parsed is not None:
        link_events.audit(
            db.session, staff(), "helpdesk.troubleshoot", found.aadsts if found else "-"
        )
        db.session.commit()
    return render_template("helpdesk/troubleshoot.html", text=text, parsed=parsed, diagnosis=found)


def _link(link_id: str) -> HelpdeskLink:
    """Return a link by id, or answer 404 when there is none in this helpdesk's scope."""
    link = links.visible(db.session, link_id, scope())
    if link is None:
        abort(404)
    return link


def _days(value: str | None) -> float:
    """Return the form's lifetime in days (7 when empty); nan and inf are not a lifetime."""
    try:
        days = float(value) if value else link_fields.DEFAULT_DAYS
    except ValueError:
        days = math.nan
    if not math.isfinite(days):
        raise link_fields.LinkRefused("The lifetime must be a number of days.")
    return days


def _connectors() -> dict[str, Any]:
    """Return this deployment's connectors by id."""
    return extensions.connectors()


def _mail(link: HelpdeskLink, url: str) -> dict[str, str]:
    """Return the pre-written e-mail for a link: subject, body and a mailto: URL."""
    body = render_template(
        "helpdesk/link_mail.txt",
        link=link,
        url=url,
        connector=_connectors().get(link.connector or ""),
        contact=current_app.config.get("HELPDESK_CONTACT") or "",
    ).strip()
    subject = {
        link_fields.AUTHENTICATE: "Connect your data tool",
        link_fields.RECONNECT: "Reconnect your data tool",
        link_fields.ADMIN_CONSENT: "Admin consent needed for the Connector Consent Portal",
        link_fields.CONSENT_REQUEST: "Your consent request",
    }[link.kind]
    to = link.login_hint or ""
    mailto = f"mailto:{quote(to, safe='@')}?subject={quote(subject)}&body={quote(body)}"
    return {"subject": subject, "body": body, "mailto": mailto, "to": to}
