"""A person's connections: the code shown once, Reconnect; Regenerate, Revoke, Remove ask first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue

from app.connectors import Connector
from app.data import snippets
from app.diagnosis.catalogue import Actor
from app.errors import AccountTypeNotSupported
from app.errors import BadClaims
from app.errors import ConnectionNotActive
from app.errors import NotFound
from app.helpdesk import link_events
from app.helpdesk import lookup
from app.identity import claims as claim_codec
from app.identity import flows
from app.identity.signins import SignIn
from app.models import REAUTHENTICATION_REQUIRED
from app.models import REVOKED
from app.models import Connection
from app.platform import extensions
from app.platform.extensions import db
from app.tokens import inventory
from app.tokens import trail
from app.web import accounts
from app.web import held
from app.web.accounts import all_connectors
from app.web.accounts import find
from app.web.accounts import login_required

bp = Blueprint("connections", __name__, url_prefix="/connections")
REGENERATED_KEY = f"{__name__}.regenerated"


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    """List the signed-in account's live connections; revoked ones only when asked for."""
    user = accounts.current_user()
    assert user is not None
    mine = inventory.connections_of(db.session, user)
    revoked = [connection for connection in mine if connection.status == REVOKED]
    live = [connection for connection in mine if connection.status != REVOKED]
    return render_template(
        "connections/index.html",
        connections=live,
        last_reads=trail.latest(db.session, [connection.id for connection in live]),
        reasons={c.id: _why_sign_in(c) for c in live if c.status == REAUTHENTICATION_REQUIRED},
        revoked=revoked,
        show_revoked=request.args.get("show") == "revoked",
        connectors=_names(),
    )


def _why_sign_in(connection: Connection) -> tuple[str, str] | None:
    """Return why this connection needs a sign-in and the owner's first step, if Entra said."""
    if not connection.last_error_code:
        return None
    name = _names().get(connection.connector)
    found = lookup.explain_code(connection.last_error_code, name, at_refresh=True)
    if not found.known:
        return None
    steps = found.steps_for(Actor.USER)
    return found.title, steps[0] if steps else found.summary


@bp.get("/<connection_id>/code")
@login_required
def code(connection_id: str) -> ResponseReturnValue:
    """Show a new connection code once; a reload shows it no more."""
    connection = _mine(connection_id)
    shown = held.reveal(session, connection.id)
    if shown is None:
        flash("A connection code is shown only once. Use Regenerate code for a new one.")
        return redirect(url_for("connections.index"), code=303)
    connector = find(connection.connector)
    # PUBLIC_URL, never the Host header: the examples travel into other people's tools.
    examples = snippets.examples(current_app.config["PUBLIC_URL"], connector.id)
    return render_template(
        "connections/code.html",
        connection=connection,
        connector=connector,
        code=shown,
        examples=examples,
        regenerated=session.pop(REGENERATED_KEY, None) == connection.id,
    )


@bp.route("/<connection_id>/regenerate", methods=["GET", "POST"])
@login_required
def regenerate(connection_id: str) -> ResponseReturnValue:
    """Ask before replacing the code; on POST replace it (the old one stops working at once)."""
    connection = _live_mine(connection_id)
    if request.method == "GET":
        return _confirm("regenerate", connection)
    new_code = extensions.connection_store().regenerate_code(connection.id)
    held.keep_for_reveal(session, connection.id, new_code)
    session[REGENERATED_KEY] = connection.id  # the code page says the old code just stopped
    return redirect(url_for("connections.code", connection_id=connection.id), code=303)


@bp.route("/<connection_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke(connection_id: str) -> ResponseReturnValue:
    """Ask before revoking; on POST revoke: the code stops working and the tokens are erased."""
    connection = _live_mine(connection_id)
    if request.method == "GET":
        return _confirm("revoke", connection)
    extensions.connection_store().revoke(connection.id)
    flash(
        f"The {find(connection.connector).name} connection was revoked. Its code no longer works."
    )
    return redirect(url_for("connections.index"), code=303)


@bp.route("/<connection_id>/remove", methods=["GET", "POST"])
@login_required
def remove(connection_id: str) -> ResponseReturnValue:
    """Ask before removing a revoked connection from the list; on POST delete its row."""
    connection = _mine(connection_id)
    name = find(connection.connector).name
    if connection.status != REVOKED:
        flash(f"The {name} connection is still live. Revoke it before removing it.")
        return redirect(url_for("connections.index"), code=303)
    if request.method == "GET":
        return _confirm("remove", connection)
    if extensions.connection_store().remove(connection.id):
        flash(f"The revoked {name} connection was removed from your list.")
    return redirect(url_for("connections.index", show="revoked"), code=303)


def _confirm(action: str, connection: Connection) -> ResponseReturnValue:
    """Render the confirmation page of a destructive action."""
    return render_template(
        "connections/confirm.html",
        action=action,
        connection=connection,
        connector=find(connection.connector),
    )


@bp.get("/<connection_id>/reconnect")
def reconnect_page(connection_id: str) -> ResponseReturnValue:
    """Explain why a connection needs to be reconnected, with the Reconnect button."""
    connection = _existing(connection_id)
    connector = find(connection.connector)
    code = connection.last_error_code if connection.status == REAUTHENTICATION_REQUIRED else ""
    found = lookup.explain_code(code, connector.name, at_refresh=True) if code else None
    return render_template(
        "connections/reconnect.html",
        connection=connection,
        connector=connector,
        owner=_viewer_owns(connection),
        diagnosis=found if found is not None and found.known else None,
        claims=_claims(request.args.get("claims")),
    )


@bp.post("/<connection_id>/reconnect")
def reconnect(connection_id: str) -> ResponseReturnValue:
    """Sign in again as the connection's account; its code keeps working."""
    connection = _existing(connection_id)
    connector = find(connection.connector)
    # The link travels through data tools: only its signed-in owner gets the username as a hint.
    hint = connection.username if _viewer_owns(connection) else None
    challenge = _claims(request.form.get("claims"))  # a resource's claims challenge (CAE)
    flow = extensions.identity().start_flow(
        connector,
        account_type=connection.account_type,
        login_hint=hint,
        claims=claim_codec.decode(challenge) if challenge else None,
        tenant=_bound_tenant(connection),
    )
    purpose = {
        "purpose": "connect",
        "connector": connector.id,
        "account_type": connection.account_type,
        "connection_id": connection.id,
    }
    flows.remember(session, flow, purpose)
    return redirect(flow["auth_uri"], code=303)


def finish_connect(result: SignIn, purpose: Mapping[str, Any]) -> ResponseReturnValue:
    """Store the new tokens, sign the person in and show the code (or confirm a switch)."""
    connector = find(purpose["connector"])
    if result.account_type not in connector.account_types:
        raise AccountTypeNotSupported(connector.name)
    expected = db.session.get(Connection, purpose.get("connection_id") or "")
    if expected is not None and not _same_account(expected, result):
        held.hold_sign_in(session, result, purpose)  # sealed: tokens never sit in the clear
        account = {"oid": result.oid, "tenant_id": result.tenant_id}
        return render_template(
            "connections/other_account.html",
            expected=expected,
            result=result,
            connector=connector,
            existing=inventory.active_for(db.session, account, connector.id),
        )
    response = _store(result, connector)
    link_events.completed(db.session, purpose)  # a helpdesk link's flow is done
    return response


FINISHERS = {"connect": finish_connect}


@bp.post("/use-other-account")
def use_other_account() -> ResponseReturnValue:
    """Keep the account the person actually signed in with, as its own connection."""
    choice = held.take_sign_in(session)
    if choice is None:
        flash("That choice expired. Start again from the connector's page.")
        return redirect(url_for("connectors.index"), code=303)
    result, purpose = choice
    return _store(result, find(purpose["connector"]))


def _store(result: SignIn, connector: Connector) -> ResponseReturnValue:
    """Create or refresh the connection, sign the person in and show a new code once."""
    connection, new_code = extensions.connection_store().create_or_update(result, connector)
    accounts.sign_in_as(result)
    if new_code is None:
        flash(f"{connector.name} is reconnected. Your connection code keeps working.")
        return redirect(url_for("connections.index"), code=303)
    held.keep_for_reveal(session, connection.id, new_code)
    return redirect(url_for("connections.code", connection_id=connection.id), code=303)


def _claims(value: str | None) -> str:
    """Return a claims challenge's base64 value from a reconnect link, or "" if none or bad."""
    if not value:
        return ""
    try:
        claim_codec.decode(value)
    except BadClaims:
        return ""  # a damaged link still reconnects, without the challenge
    return value


def _bound_tenant(connection: Connection) -> str | None:
    """Return the tenant a reconnect signs in at: a guest's is the resource tenant's path."""
    tenant = connection.authority_tenant
    return None if tenant in ("common", "organizations", "consumers") else tenant


def _viewer_owns(connection: Connection) -> bool:
    """Tell whether the signed-in account is the connection's."""
    return inventory.owned(db.session, accounts.current_user(), connection.id) is not None


def _same_account(connection: Connection, result: SignIn) -> bool:
    """Tell whether a sign-in is the account a connection belongs to."""
    return (connection.oid, connection.tenant_id) == (result.oid, result.tenant_id)


def _mine(connection_id: str) -> Connection:
    """Return the signed-in account's connection or answer 404."""
    connection = inventory.owned(db.session, accounts.current_user(), connection_id)
    if connection is None:
        raise NotFound()
    return connection


def _live_mine(connection_id: str) -> Connection:
    """Return the signed-in account's connection unless it was revoked (then answer 409)."""
    connection = _mine(connection_id)
    if connection.status == REVOKED:
        raise ConnectionNotActive()
    return connection


def _existing(connection_id: str) -> Connection:
    """Return a connection that can be reconnected, or answer 404."""
    connection = db.session.get(Connection, connection_id) if len(connection_id) <= 64 else None
    if connection is None or connection.status == "revoked":
        raise NotFound()
    return connection


def _names() -> dict[str, str]:
    """Return connector names by id, for the list."""
    return {key: connector.name for key, connector in all_connectors().items()}
