"""Helpdesk tools: sharing links (create, hand out, revoke) and the troubleshooter."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import quote

import segno
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.diagnosis import paste
from app.diagnosis import staff as staff_view
from app.errors import LinkRefused
from app.errors import NotFound
from app.helpdesk import link_events
from app.helpdesk import link_fields
from app.helpdesk import links
from app.models import HelpdeskLink
from app.platform import extensions
from app.platform.extensions import csrf
from app.platform.extensions import db
from app.web import held
from app.web.accounts import all_connectors
from app.web.accounts import helpdesk_scope
from app.web.accounts import login_required
from app.web.accounts import reveal_link
from app.web.accounts import staff
from app.web.accounts import staff_tenant

bp = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")
csrf.exempt(bp)  # login_required(role="helpdesk") checks the token after the role (C22)


@bp.get("")
@login_required(role="helpdesk")
def index() -> ResponseReturnValue:
    """Show the user lookup, the link form (the kind first, then its fields) and recent links."""
    return _index(request.args)


@bp.post("/links")
@login_required(role="helpdesk")
def create_link() -> ResponseReturnValue:
    """Create a sharing link and show it once; on a refusal show the form again as typed."""
    form = request.form
    kind = form.get("kind", "")
    if kind not in link_fields.KINDS:
        return _index(form, LinkRefused("Choose the kind of link first.", field="kind"))
    shown = link_fields.FIELDS[kind]  # a field of another kind, sent anyway, is not used
    try:
        made = extensions.links().create(
            db.session,
            kind=kind,
            created_by=staff(),
            tenant_id=staff_tenant(),
            scope=helpdesk_scope(),
            days=_days(form.get("days")),
            multi_use=form.get("multi_use") == "on",
            note=form.get("note"),
            **{name: form.get(name) or None for name in shown},
        )
    except LinkRefused as refused:
        db.session.rollback()
        return _index(form, refused)
    return reveal_link(made)


def _index(form: Mapping[str, str], refused: LinkRefused | None = None) -> ResponseReturnValue:
    """Render the helpdesk page, with a refused link's message beside its field."""
    kind = form.get("kind", "")
    if refused is not None:
        flash(f"The link was not created: {refused}", "error")
    page = render_template(
        "helpdesk/index.html",
        links=links.recent(db.session, helpdesk_scope()),
        status=links.status,
        kinds=link_fields.KINDS,
        kind=kind if kind in link_fields.KINDS else "",
        fields=link_fields.FIELDS.get(kind, ()),
        connectors=all_connectors(),
        max_days=current_app.config["LINK_MAX_DAYS"],
        form=form,
        errors={refused.field or "kind": str(refused)} if refused is not None else {},
    )
    return (page, 400) if refused is not None else page


@bp.get("/links/<link_id>")
@login_required(role="helpdesk")
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
        connector=all_connectors().get(link.connector or ""),
        url=url,
        qr=segno.make(url, error="m").svg_data_uri(scale=5, border=2) if url else None,
        mail=_mail(link, url) if url else None,
    )


@bp.post("/links/<link_id>/revoke")
@login_required(role="helpdesk")
def revoke_link(link_id: str) -> ResponseReturnValue:
    """Revoke a link."""
    link = _link(link_id)
    links.revoke(db.session, link, staff())
    flash("The link was revoked. Whoever opens it now is told to contact the helpdesk.", "success")
    return redirect(url_for("helpdesk.show_link", link_id=link.id), code=303)


@bp.get("/troubleshoot")
@login_required(role="helpdesk")
def troubleshoot() -> ResponseReturnValue:
    """Show the empty troubleshooter: a GET reads no input and writes nothing (C55)."""
    return render_template("helpdesk/troubleshoot.html", text="", parsed=None, diagnosis=None)


@bp.post("/troubleshoot")
@login_required(role="helpdesk")
def diagnose_paste() -> ResponseReturnValue:
    """Read a pasted AADSTS code, Entra message or support block and show the diagnosis."""
    text = (request.form.get("text") or "")[: paste.MAX_PASTE]
    parsed = paste.parse_error_text(text) if text.strip() else None
    found = parsed.diagnose() if parsed is not None and parsed.found else None
    if parsed is not None:
        link_events.audit(
            db.session, staff(), "helpdesk.troubleshoot", found.aadsts if found else "-"
        )
        db.session.commit()
    return render_template(
        "helpdesk/troubleshoot.html",
        text=text,
        parsed=parsed,
        diagnosis=found,
        sections=staff_view.for_staff(found) if found else [],
    )


def _link(link_id: str) -> HelpdeskLink:
    """Return a link by id, or answer 404 when there is none in this helpdesk's scope."""
    link = links.visible(db.session, link_id, helpdesk_scope())
    if link is None:
        raise NotFound()
    return link


def _days(value: str | None) -> float:
    """Return the form's lifetime in days (7 when empty); nan and inf are not a lifetime."""
    try:
        days = float(value) if value else link_fields.DEFAULT_DAYS
    except ValueError:
        days = math.nan
    if not math.isfinite(days):
        raise LinkRefused("The lifetime must be a number of days.", field="days")
    return days


def _mail(link: HelpdeskLink, url: str) -> dict[str, str]:
    """Return the pre-written e-mail for a link: subject, body and a mailto: URL."""
    body = render_template(
        "helpdesk/link_mail.txt",
        link=link,
        url=url,
        connector=all_connectors().get(link.connector or ""),
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
