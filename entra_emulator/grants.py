"""The grant handlers of /token, keyed by grant_type: each turns a TokenRequest into a body."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from entra_emulator import conditional_access
from entra_emulator import minting
from entra_emulator.errors import EntraError
from entra_emulator.runtime import Runtime
from entra_emulator.state import Code
from entra_emulator.state import fingerprint
from entra_emulator.token_request import TokenRequest
from entra_emulator.world import App

log = logging.getLogger(__name__)
# (runtime, request, authenticated client, request-log fields to add to) -> token response body
GrantHandler = Callable[[Runtime, TokenRequest, App, dict[str, Any]], dict[str, Any]]


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


def authorization_code(
    runtime: Runtime, req: TokenRequest, app: App, log_fields: dict[str, Any]
) -> dict[str, Any]:
    """Redeem a code (checklist 22): single use, unexpired, same client, URI, PKCE, tenant."""
    state = runtime.state
    if not req.code:
        raise EntraError(900144, parameter="code")
    code = state.codes.get(req.code)
    if code is None:
        raise EntraError(9002313, error="invalid_grant")
    log_fields["username"] = code.username
    if code.used:
        raise EntraError(54005)
    if time.time() - code.created > state.settings["code_lifetime_seconds"]:
        raise EntraError(70008)
    if code.client_id != app.client_id:
        raise EntraError(70000)
    if req.redirect_uri != code.redirect_uri:
        raise EntraError(
            50011,
            error="invalid_grant",
            redirect_uri=req.redirect_uri or "",
            client_id=app.client_id,
        )
    if not _pkce_ok(code, req.code_verifier):
        raise EntraError(501481)
    if req.tenant_id is not None and req.tenant_id != code.tenant:
        raise EntraError(700005)
    code.used = True
    log.info("redeemed code %s for %s", fingerprint(req.code), code.username)
    user = state.world.users[code.username]
    return minting.issue(
        runtime,
        app,
        user,
        req.scope or " ".join(code.scopes),
        code=code,
        session_id=code.session_id,
        with_client_info=req.client_info,
        mfa=code.mfa,
        cae=minting.capable(req.claims),
    )


def refresh_token(
    runtime: Runtime, req: TokenRequest, app: App, log_fields: dict[str, Any]
) -> dict[str, Any]:
    """Redeem a refresh token (checklist 28-29): consent per resource, rotation, revocation."""
    state = runtime.state
    record = state.refresh_tokens.get(req.refresh_token)
    if record is None or record.client_id != app.client_id:
        raise EntraError(9002313, error="invalid_grant")
    log_fields["username"] = record.username
    now = time.time()
    if record.revoked:
        raise EntraError(50173)
    if record.used and state.settings["single_use_refresh_tokens"]:
        raise EntraError(70008)
    idle = now - record.last_used
    if idle > state.settings["refresh_token_lifetime_seconds"]:
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.issued))
        raise EntraError(700082, issued=issued, inactive=f"{int(idle)} seconds")
    if req.tenant_id is not None and req.tenant_id != record.tenant:
        raise EntraError(700005)
    user = state.world.users[record.username]
    conditional_access.check_refresh(state.world, user, req.scope, record.signed_in, record.mfa)
    body = minting.issue(
        runtime,
        app,
        user,
        req.scope,
        session_id=record.session_id,
        with_client_info=req.client_info,
        signed_in=record.signed_in,
        mfa=record.mfa,
        cae=minting.capable(req.claims),
    )
    record.used, record.last_used = True, now
    log.info("refreshed %s for %s", fingerprint(req.refresh_token), record.username)
    return body


def client_credentials(
    runtime: Runtime, req: TokenRequest, app: App, log_fields: dict[str, Any]
) -> dict[str, Any]:
    """Issue an app-only token for <resource>/.default in a named tenant."""
    if req.tenant_id is None:
        raise EntraError(50059)
    return minting.issue_app_only(runtime, app, req.tenant_id, req.scope)


GRANTS: dict[str, GrantHandler] = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
