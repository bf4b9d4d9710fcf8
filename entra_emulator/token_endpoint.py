"""/token: authenticate the client, run the grant for grant_type (protocol 2.4, checklist 21-31)."""

from __future__ import annotations

import logging
import secrets

from flask import g
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from entra_emulator import throttling
from entra_emulator.app_credentials import credential
from entra_emulator.assertions import verify_assertion
from entra_emulator.errors import EntraError
from entra_emulator.grants import GRANTS
from entra_emulator.request_log import RECEIVED
from entra_emulator.runtime import Runtime
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve
from entra_emulator.state import fingerprint
from entra_emulator.token_request import TokenRequest
from entra_emulator.world import App

log = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token(tenant: str) -> ResponseReturnValue:
    """Authenticate the client and run the grant handler for grant_type."""
    if request.method != "POST":
        raise EntraError(900561)
    runtime = current()
    segment, tid = resolve(tenant)
    authorization = request.headers.get("Authorization", "")
    endpoint = f"{runtime.base_url}{request.path}"
    token_request = TokenRequest.parse(request.form, authorization, segment, tid, endpoint)
    # The request log keeps these fields even when a later step refuses the request.
    g.log_fields = {"grant_type": token_request.grant_type}
    if token_request.refresh_token:  # tells refreshes of one user's several connections apart
        g.log_fields["refresh_token_fingerprint"] = fingerprint(token_request.refresh_token)
    # Service protection counts per app and tenant, before the client is authenticated.
    throttling.check(
        runtime.state, token_request.client_id, tid or segment, request.environ.get(RECEIVED)
    )
    app = authenticate_client(runtime, token_request)
    g.log_fields["client_id"] = app.client_id
    handler = GRANTS.get(token_request.grant_type)
    if handler is None:
        raise EntraError(70003, grant=token_request.grant_type)
    body = handler(runtime, token_request, app, g.log_fields)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response


def authenticate_client(runtime: Runtime, token_request: TokenRequest) -> App:
    """Return the calling app; raise 700016 (400) or invalid_client (401) on failure."""
    client_id, secret = token_request.client_id, token_request.client_secret
    app = runtime.state.world.apps.get(client_id)
    if app is None:
        tenant = token_request.tenant_id or token_request.segment
        raise EntraError(700016, client_id=client_id, tenant=tenant)
    if token_request.client_assertion:
        if token_request.client_assertion_type != ASSERTION_TYPE:
            raise EntraError(700027, status=401, reason="Unsupported assertion type.")
        verify_assertion(app, token_request.client_assertion, token_request.endpoint)
    elif not secret:
        raise EntraError(7000218, status=401)
    else:
        _check_secret(app, secret)
    return app


def _check_secret(app: App, secret: str) -> None:
    """Raise 7000215 for a secret the app does not have, 7000222 for one past its end."""
    known = next(
        (s for s in app.secrets + app.expired_secrets if secrets.compare_digest(secret, s)), None
    )
    if known is None:
        log.info("bad secret %s for %s", fingerprint(secret), app.client_id)
        raise EntraError(7000215, status=401, client_id=app.client_id)
    if known in app.expired_secrets or credential(app, known).expired():
        raise EntraError(7000222, status=401, client_id=app.client_id)
