"""Token minting: access, ID and refresh tokens and the token response body, from a Runtime."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from typing import Any

from entra_emulator import scopes
from entra_emulator.consent import personal_refused
from entra_emulator.errors import EntraError
from entra_emulator.guests import guest_claims
from entra_emulator.keys import b64url
from entra_emulator.runtime import Runtime
from entra_emulator.state import Code
from entra_emulator.state import RefreshToken
from entra_emulator.state import State
from entra_emulator.state import new_secret
from entra_emulator.world import DEFAULT_SETTINGS
from entra_emulator.world import ROLE_IDS
from entra_emulator.world import App
from entra_emulator.world import User
from entra_emulator.world import stable_id


def service_principal_id(tenant: str, client_id: str) -> str:
    """Return the object id of an app's service principal (enterprise app) in a tenant."""
    return stable_id("sp", tenant, client_id)


def client_info(user: User) -> str:
    """Return client_info: unpadded base64url of {"uid","utid"} of the home account."""
    info = {"uid": user.home_oid or user.oid, "utid": user.home_tenant or user.tenant}
    return b64url(json.dumps(info, separators=(",", ":")).encode())


def issue(
    runtime: Runtime,
    app: App,
    user: User,
    scope: str,
    *,
    code: Code | None = None,
    session_id: str = "",
    with_client_info: bool = False,
    signed_in: float | None = None,
    mfa: bool = False,
    cae: bool = False,
) -> dict[str, Any]:
    """Mint the token response for a user: one resource, consent-checked, scope echoed."""
    state = runtime.state
    oidc, raws = scopes.split(scope)
    refs = scopes.parse(state.world, raws)
    groups = scopes.by_resource(refs)
    if code is not None and len(groups) > 1:
        raise EntraError(28000, scope=scope)
    _check_app(state, app, user)
    resource = next(iter(groups), scopes.GRAPH)
    chosen = groups.get(resource, [])  # a refresh spanning resources serves the first one
    if personal_refused(user, chosen):
        raise EntraError(70011, scope=" ".join(r.raw for r in chosen))
    granted = state.granted(user.tenant, app.client_id, resource, user.username)
    wanted = scopes.names(app, chosen)
    if (code is None and wanted - granted) or (chosen and not granted):
        raise EntraError(
            65001, suberror="consent_required", client_id=app.client_id, app_name=app.name
        )
    lifetime = int(state.settings["access_token_lifetime_seconds"])
    # A CAE-capable client gets a long-lived token from a resource that evaluates CAE (Graph
    # here; Storage and Dataverse do not). A lifetime set below the default (a token lifetime
    # policy, or a test's short one) applies to CAE tokens too: inferred.
    cae = cae and resource == scopes.GRAPH
    if cae and lifetime >= DEFAULT_SETTINGS["access_token_lifetime_seconds"]:
        lifetime = max(lifetime, int(state.settings["cae_access_token_lifetime_seconds"]))
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": scopes.echo(chosen, granted, oidc),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token(
            runtime, app, user, resource, sorted(granted), lifetime, cae=cae
        ),
    }
    if "offline_access" in oidc:
        body["refresh_token"] = _new_refresh_token(state, app, user, session_id, signed_in, mfa)
    if "openid" in oidc:
        body["id_token"] = id_token(runtime, app, user, code, session_id)
    if with_client_info:
        body["client_info"] = client_info(user)
    return body


def _check_app(state: State, app: App, user: User) -> None:
    """Raise the token errors for a disabled or assignment-gated enterprise app."""
    if user.personal:
        return
    props = state.world.enterprise_app(user.tenant, app.client_id)
    if props.deleted:  # the tenant's service principal is gone; consent would re-create it
        raise EntraError(700016, client_id=app.client_id, tenant=user.tenant)
    if not props.account_enabled:
        raise EntraError(7000112, client_id=app.client_id, app_name=app.name)
    if props.assignment_required and user.username not in props.assigned_users:
        raise EntraError(
            50105,
            error="invalid_grant",
            client_id=app.client_id,
            app_name=app.name,
            username=user.username,
        )


def _new_refresh_token(
    state: State, app: App, user: User, session_id: str, signed_in: float | None, mfa: bool
) -> str:
    """Mint and store a fresh opaque refresh token (a rotated one keeps its chain's sign-in)."""
    value = new_secret("1.AR")
    state.refresh_tokens[value] = RefreshToken(
        username=user.username,
        client_id=app.client_id,
        tenant=user.tenant,
        session_id=session_id,
        signed_in=time.time() if signed_in is None else signed_in,
        mfa=mfa,
    )
    return value


def _common_claims(lifetime: int) -> dict[str, Any]:
    """Return the time and identifier claims every token carries."""
    now = int(time.time())
    return {
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "uti": b64url(secrets.token_bytes(16)),
        "aio": b64url(secrets.token_bytes(24)),
        "rh": "0." + b64url(secrets.token_bytes(24)) + ".",
    }


def wids(user: User) -> list[str]:
    """Return the template IDs of the user's directory roles, as the wids claim lists them."""
    return [] if user.personal else [*user.roles, ROLE_IDS["User"]]


def capable(claims: str) -> bool:
    """Tell whether a token request's claims parameter declares the CP1 capability (CAE)."""
    try:
        parsed = json.loads(claims) if claims else {}
        values = parsed["access_token"]["xms_cc"]["values"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(values, list) and "cp1" in {str(v).lower() for v in values}


def access_token(
    runtime: Runtime,
    app: App,
    user: User,
    resource: str,
    scp: list[str],
    lifetime: int,
    *,
    cae: bool = False,
) -> str:
    """Mint a signed delegated access token for one resource (xms_cc for a CAE client)."""
    claims = _common_claims(lifetime) | {
        "aud": resource,
        "iss": runtime.issuer(user.tenant),
        "appid": app.client_id,
        "azp": app.client_id,
        "app_displayname": app.name,
        "idtyp": "user",
        "name": user.display_name,
        "oid": user.oid,
        "sub": _pairwise(user, resource),
        "tid": user.tenant,
        "scp": " ".join(scp),
        "upn": user.username,
        "unique_name": user.home or user.username,
        "ver": "1.0",
        "wids": wids(user),
    }
    if user.guest:  # a guest's v1 token names them by unique_name and idp, without upn (inferred)
        del claims["upn"]
        claims.update(guest_claims(runtime.state.settings, user))
    if cae:
        claims["xms_cc"] = ["CP1"]
    return runtime.keys.sign(claims)


def id_token(runtime: Runtime, app: App, user: User, code: Code | None, session_id: str) -> str:
    """Mint a signed ID token; nonce is copied verbatim from the authorize request."""
    session = runtime.state.sessions.get(session_id)
    claims = _common_claims(3600) | {
        "aud": app.client_id,
        "iss": runtime.issuer(user.tenant),
        "sub": _pairwise(user, app.client_id),
        "oid": user.oid,
        "tid": user.tenant,
        # A guest is known by the name they sign in with: their home one.
        "preferred_username": user.home or user.username,
        "email": user.home or user.username,
        "login_hint": b64url((user.home or user.username).encode()),
        "name": user.display_name,
        "ver": "2.0",
    }
    claims.update(guest_claims(runtime.state.settings, user))  # idp and acct for a guest
    if session is not None:
        claims["sid"] = str(uuid.UUID(session.session_state))
    if code is not None:
        claims["auth_time"] = code.auth_time
        if code.nonce is not None:
            claims["nonce"] = code.nonce
    if app.group_membership_claims in ("DirectoryRole", "All") and not user.personal:
        claims["wids"] = wids(user)
    roles = user.app_roles.get(app.client_id)
    if roles:
        claims["roles"] = roles
    return runtime.keys.sign(claims)


def _pairwise(user: User, audience: str) -> str:
    """Return a pairwise subject: stable per user and audience, opaque to both."""
    return b64url(hashlib.sha256(f"{user.oid}|{audience}".encode()).digest())[:43]


def issue_app_only(runtime: Runtime, app: App, tenant: str, scope: str) -> dict[str, Any]:
    """Mint a client-credentials token response for <resource>/.default."""
    raws = scope.split()
    if len(raws) != 1 or not raws[0].endswith("/.default"):
        raise EntraError(1002012, scope=scope)
    ref = scopes.parse(runtime.state.world, raws)[0]
    lifetime = int(runtime.state.settings["access_token_lifetime_seconds"])
    claims = _common_claims(lifetime) | {
        "aud": ref.resource,
        "iss": runtime.issuer(tenant),
        "appid": app.client_id,
        "azp": app.client_id,
        "idtyp": "app",
        "oid": service_principal_id(tenant, app.client_id),
        "sub": service_principal_id(tenant, app.client_id),
        "tid": tenant,
        # Application permissions the app holds (admin-consented, inferred): Graph's only here.
        "roles": list(app.application_permissions) if ref.resource == scopes.GRAPH else [],
        "ver": "1.0",
    }
    token = runtime.keys.sign(claims)
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }
