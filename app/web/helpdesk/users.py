"""Helpdesk user lookup: a person's connections and their health, Test connection, reconnect."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from app.errors import LinkRefused
from app.errors import NotFound
from app.errors import PortalError
from app.errors import ReauthenticationRequired
from app.helpdesk import keepalive
from app.helpdesk import link_events
from app.helpdesk import link_fields
from app.helpdesk import lookup
from app.helpdesk import probes
from app.identity import roles
from app.models import Connection
from app.platform import extensions
from app.platform.extensions import csrf
from app.platform.extensions import db
from app.web.accounts import helpdesk_scope
from app.web.accounts import login_required
from app.web.accounts import reveal_link
from app.web.accounts import staff
from app.web.accounts import staff_tenant

bp = Blueprint("helpdesk_users", __name__, url_prefix="/helpdesk")
csrf.exempt(bp)  # login_required(role="helpdesk") checks the token after the role
STATUS_LABELS = {
    "active": "Active",
    "reauthentication_required": "Reauthentication required",
    "revoked": "Revoked",
}
MAX_QUERY = 254


@bp.get("/users", endpoint="lookup")
@login_required(role="helpdesk")
def find_person() -> ResponseReturnValue:
    """Find a person by username or e-mail and show everything the helpdesk needs."""
    query = (request.args.get("q") or "").strip().lower()[:MAX_QUERY]
    tenants = helpdesk_scope()
    # A lookup reached from another site is shown prefilled, not run: it writes no audit row and
    # a link elsewhere cannot make a helpdesk member search (C56). Every search that runs is
    # audited.
    asked_here = _asked_here()
    people = lookup.people(db.session, query, tenants) if query and asked_here else []
    if query and asked_here:
        link_events.audit(db.session, staff(), "helpdesk.lookup", query, found=str(len(people)))
        db.session.commit()
    connectors = extensions.connectors()
    names = {c.id: c.name for c in connectors.values()}
    return render_template(
        "helpdesk/users.html",
        query=query,
        confirm=bool(query) and not asked_here,
        people=[lookup.person(db.session, username, tenants, names) for username in people],
        status_labels=STATUS_LABELS,
        connectors=connectors,
        limit_days=keepalive.INACTIVITY_LIMIT_DAYS,
        trail_days=current_app.config["ACCESS_TRAIL_DAYS"],
    )


@bp.post("/connections/<connection_id>/test")
@login_required(role="helpdesk")
def test_connection(connection_id: str) -> ResponseReturnValue:
    """Get a fresh token for the connection and call the connector's API with it."""
    connection = _connection(connection_id)
    connector = extensions.connectors().get(connection.connector)
    if connector is None:
        raise NotFound()
    calls: list[probes.Call] = []
    problem = None
    try:
        token = extensions.broker().connection_token(connection.id)
    except ReauthenticationRequired:
        problem = "Microsoft refused to refresh this connection: it needs to be reconnected."
    except PortalError as error:
        problem = error.message
    else:
        calls = probes.run(
            connector,
            token.access_token,
            connection.username,
            scopes=connection.scope_list,
            resource_urls=current_app.config["RESOURCE_URLS"],
            http=extensions.identity().http,
            timeout=float(current_app.config["HTTP_TIMEOUT"]),
        )
    outcome = "ok" if calls and all(c.ok for c in calls) else "failed"
    link_events.audit(
        db.session, staff(), "helpdesk.test_connection", connection.id, outcome=outcome
    )
    db.session.commit()
    db.session.refresh(connection)
    return render_template(
        "helpdesk/test.html",
        connection=connection,
        connector=connector,
        calls=calls,
        problem=problem,
        planned=bool(probes.plan(connector, current_app.config["RESOURCE_URLS"])),
        status_labels=STATUS_LABELS,
    )


@bp.post("/connections/<connection_id>/reconnect-link")
@login_required(role="helpdesk")
def send_reconnect_link(connection_id: str) -> ResponseReturnValue:
    """Create a reconnect link for the connection and e-mail it to its owner if SMTP is set."""
    connection = _connection(connection_id)
    try:
        made = extensions.links().create(
            db.session,
            kind=link_fields.RECONNECT,
            created_by=staff(),
            tenant_id=staff_tenant(),
            scope=helpdesk_scope(),
            connection_id=connection.id,
        )
    except LinkRefused as refused:
        flash(f"The link was not created: {refused}", "error")
        return redirect(url_for("helpdesk_users.lookup", q=connection.username), code=303)
    if extensions.keepalive().send_reconnect_mail(db.session, connection, made.url):
        flash(f"A reconnect link was e-mailed to {connection.username}.", "success")
    else:
        flash("E-mail is not configured: copy the link below and send it to the person.")
    return reveal_link(made)


def _asked_here() -> bool:
    """Tell whether this GET came from the portal's own pages or the person's own address bar.

    Browsers send Sec-Fetch-Site on every navigation ("none" when typed or bookmarked); without
    it (older browsers, scripts with the cookie) a Referer or Origin, if sent, must be this site.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    here = current_app.config["PUBLIC_URL"].rstrip("/")
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value and value.rstrip("/") != here and not value.startswith(here + "/"):
            return False
    return True


def _connection(connection_id: str) -> Connection:
    """Return a connection by id, or answer 404 when there is none in the helpdesk's scope."""
    connection = db.session.get(Connection, connection_id[:64])
    if connection is None or not roles.in_scope(connection.tenant_id, helpdesk_scope()):
        raise NotFound()  # the same answer whether it exists in another tenant or not at all
    return connection
