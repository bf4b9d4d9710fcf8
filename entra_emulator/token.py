"""/token: client authentication and a dict of grant handlers (protocol 2.4, checklist 21-31)."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from flask import g
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from entra_emulator import tokens
from entra_emulator.assertions import verify_assertion
from entra_emulator.errors import EntraError
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve
from entra_emulator.state import Code
from entra_emulator.state import fingerprint
from entra_emulator.world import App

log = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token(tenant: str) -> ResponseReturnValue:
    """Authenticate the client and run the grant handler for grant_type."""
    if request.method != "POST":
        raise EntraError(900561)
    segment, tid = resolve(tenant)
    form = request.form
    g.log_fields = {"grant_type": form.get("grant_type", "")}
    app = authenticate_client(segment, tid)
    g.log_fields["client_id"] = app.client_id
    handler = GRANTS.get(form.get("grant_type", ""))
    if handler is None:
        raise EntraError(70003, grant=form.get("grant_type", ""))
    body = handler(app, segment, tid)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response


def _basic_credentials() -> tuple[str, str] | None:
    """Return (client_id, secret) from an HTTP Basic header, if any."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def authenticate_client(segment: str, tid: str | None) -> App:
    """Return the calling app; raise 700016 (400) or invalid_client (401) on failure."""
    form = request.form
    basic = _basic_credentials()
    client_id = (form.get("client_id") or (basic[0] if basic else "")).lower()
    app = current().state.world.apps.get(client_id)
    if app is None:
        raise EntraError(700016, client_id=client_id, tenant=tid or segment)
    secret = form.get("client_secret") or (basic[1] if basic else None)
    if form.get("client_assertion"):
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(700027, status=401, reason="Unsupported assertion type.")
        endpoint = f"{current().base_url}{request.path}"
        verify_assertion(app, form["client_assertion"], endpoint)
    elif not secret:
        raise EntraError(7000218, status=401)
    elif any(secrets.compare_digest(secret, s) for s in app.expired_secrets):
        raise EntraError(7000222, status=401, client_id=app.client_id)
    elif not any(secrets.compare_digest(secret, s) for s in app.secrets):
        log.info("bad secret %s for %s", fingerprint(secret), app.client_id)
        raise EntraError(7000215, status=401, client_id=app.client_id)
    return app


def _pkce_ok(code: Code, verifier: str | None) -> bool:
    """Return True if the verifier matches the code's challenge (S256 or plain)."""
    if not code.challenge:
        return True
    if not verifier:
        return False
    if code.method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return secrets.compare_digest(computed, code.challenge)
    return secrets.compare_digest(verifier, code.challenge)


def authorization_code(app: App, segment: str, tid: str | None) -> dict[str, Any]:
    """Redeem a code (checklist 22): single use, unexpired, same client, URI, PKCE, tenant."""
    state, form = current().state, request.form
    value = form.get("code")
    if not value:
        raise EntraError(900144, parameter="code")
    code = state.codes.get(value)
    if code is None:
        raise EntraError(9002313, error="invalid_grant")
    g.log_fields["username"] = code.username
    if code.used:
        raise EntraError(54005)
    if time.time() - code.created > state.settings["code_lifetime_seconds"]:
        raise EntraError(70008)
    if code.client_id != app.client_id:
        raise EntraError(70000)
    if form.get("redirect_uri") != code.redirect_uri:
        raise EntraError(
            50011,
            error="invalid_grant",
            redirect_uri=form.get("redirect_uri", ""),
            client_id=app.client_id,
        )
    if not _pkce_ok(code, form.get("code_verifier")):
        raise EntraError(501481)
    if tid is not None and tid != code.tenant:
        raise EntraError(700005)
    code.used = True
    log.info("redeemed code %s for %s", fingerprint(value), code.username)
    user = state.world.users[code.username]
    request_scope = form.get("scope") or " ".join(code.scopes)
    return tokens.issue(app, user, request_scope, segment, code=code, session_id=code.session_id)


def refresh_token(app: App, segment: str, tid: str | None) -> dict[str, Any]:
    """Redeem a refresh token (checklist 28-29): consent per resource, rotation, revocation."""
    state, form = current().state, request.form
    value = form.get("refresh_token", "")
    record = state.refresh_tokens.get(value)
    if record is None or record.client_id != app.client_id:
        raise EntraError(9002313, error="invalid_grant")
    g.log_fields["username"] = record.username
    now = time.time()
    if record.revoked:
        raise EntraError(50173)
    if record.used and state.settings["single_use_refresh_tokens"]:
        raise EntraError(70008)
    idle = now - record.last_used
    if idle > state.settings["refresh_token_lifetime_seconds"]:
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.issued))
        raise EntraError(700082, issued=issued, inactive=f"{int(idle)} seconds")
    if tid is not None and tid != record.tenant:
        raise EntraError(700005)
    user = state.world.users[record.username]
    body = tokens.issue(app, user, form.get("scope", ""), segment, session_id=record.session_id)
    record.used, record.last_used = True, now
    log.info("refreshed %s for %s", fingerprint(value), record.username)
    return body


def client_credentials(app: App, segment: str, tid: str | None) -> dict[str, Any]:
    """Issue an app-only token for <resource>/.default in a named tenant."""
    if tid is None:
        raise EntraError(50059)
    return tokens.issue_app_only(app, tid, request.form.get("scope", ""))


GRANTS: dict[str, Callable[[App, str, str | None], dict[str, Any]]] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
