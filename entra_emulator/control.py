"""The JSON control plane under /_emulator/ (product.md section 5) that tests drive."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue

from entra_emulator import app_credentials
from entra_emulator.runtime import current
from entra_emulator.scopes import GRAPH
from entra_emulator.world import CONSUMER_TENANT
from entra_emulator.world import POLICIES
from entra_emulator.world import App
from entra_emulator.world import ConfigError


class ControlError(Exception):
    """A control-plane request that cannot be applied (answered 400 with the reason)."""


def json_body() -> dict[str, Any]:
    """Return the JSON body, or an empty dict."""
    body = request.get_json(silent=True)
    if body is not None and not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    return body or {}


def _tenant(name: str) -> str:
    """Return the GUID of a tenant named by GUID, domain or 'consumers'."""
    if name in ("consumers", CONSUMER_TENANT):
        return CONSUMER_TENANT
    tenant = current().state.world.tenant_for(name or "")
    if tenant is None:
        raise ControlError(f"tenant: unknown tenant {name!r}")
    return tenant.id


def get_state() -> ResponseReturnValue:
    """Return tenants, users (no passwords), apps, grants, requests and settings."""
    state = current().state
    world = state.world
    return {
        "tenants": [
            {
                "id": t.id,
                "name": t.name,
                "domains": t.domains,
                "policy": t.policy,
                "workflow": t.workflow,
                "enterprise_apps": {
                    cid: vars(props) for (tid, cid), props in world.enterprise_apps.items()
                    if tid == t.id
                },
            }
            for t in world.tenants.values()
        ],
        "users": [
            {"username": u.username, "tenant": u.tenant, "oid": u.oid, "roles": u.roles,
             "display_name": u.display_name, "storage_roles": u.storage_roles,
             "disabled": u.disabled, "deleted": u.deleted, "password_expired": u.password_expired,
             "home": u.home, "user_type": "Guest" if u.guest else "Member"}
            for u in world.users.values()
        ],
        "apps": [
            {"client_id": a.client_id, "name": a.name, "redirect_uris": a.redirect_uris,
             "multi_tenant": a.multi_tenant}
            for a in world.apps.values()
        ],
        "grants": [grant.as_dict() for grant in state.grants],
        "consent_requests": [vars(r) for r in state.consent_requests.values()],
        "settings": state.settings,
    }  # fmt: skip


def post_app() -> ResponseReturnValue:
    """Register an app; answer its client id and secret."""
    body = json_body()
    uris = body.get("redirect_uris", [])
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise ControlError("redirect_uris: expected a list of strings")
    client_id = str(uuid.uuid4())
    app = App(
        client_id=client_id,
        name=str(body.get("name", "Test application")),
        secrets=[],
        expired_secrets=[],
        certificates=[],
        redirect_uris=uris,
        multi_tenant=bool(body.get("multi_tenant", True)),
        personal_accounts=bool(body.get("personal_accounts", True)),
        group_membership_claims=str(body.get("group_membership_claims", "DirectoryRole")),
        app_roles=[str(r) for r in body.get("app_roles", [])],
        home_tenant=_tenant(body["home_tenant"]) if body.get("home_tenant") else None,
        required_permissions=[str(p) for p in body.get("required_permissions", [])],
        application_permissions=[str(p) for p in body.get("application_permissions", [])],
    )
    _credentials(app, body)
    current().state.world.apps[client_id] = app
    return {
        "client_id": client_id,
        "client_secret": app.secrets[0],
        "client_secrets": app.secrets,
    }, 201


def _credentials(app: App, body: dict[str, Any]) -> None:
    """Add the body's secrets (one generated when none is given), expired ones and certificates."""
    given = body.get("secrets") or [{}]
    if not isinstance(given, list):
        raise ControlError("secrets: expected a list")
    generated = [
        entry if isinstance(entry, str) or entry.get("value") else {**entry, "value": new_secret()}
        for entry in given
        if isinstance(entry, str | dict)
    ]
    try:
        app_credentials.register(app, {**body, "secrets": generated}, "apps")
    except ConfigError as error:
        raise ControlError(str(error)) from None


def new_secret() -> str:
    """Return a secret value shaped like Entra's (40 characters, a '~' after the hint)."""
    return secrets.token_urlsafe(3)[:3] + "8Q~" + secrets.token_urlsafe(30)[:34]


def app_expiry(client_id: str) -> ResponseReturnValue:
    """Move the endDateTime of one of an app's secrets or certificates (now: expires_in 0)."""
    app = current().state.world.apps.get(client_id.lower())
    if app is None:
        raise ControlError(f"client_id: unknown app {client_id!r}")
    body = json_body()
    value = body.get("secret") or body.get("certificate")
    if not isinstance(value, str) or value not in app.credentials:
        raise ControlError("secret or certificate: expected one registered on this app")
    key = "end_date_time" if "end_date_time" in body else "expires_in"
    try:
        end = app_credentials.parse_end(body.get(key, 0), key, time.time())
    except ConfigError as error:
        raise ControlError(str(error)) from None
    found = app_credentials.credential(app, value)
    found.end = end
    return {"keyId": found.key_id, "endDateTime": app_credentials.iso(end)}


def post_settings() -> ResponseReturnValue:
    """Change lifetimes and switches for tokens issued from now on."""
    settings = current().state.settings
    for key, value in json_body().items():
        if key not in settings:
            raise ControlError(f"{key}: unknown setting")
        if type(value) is not type(settings[key]):
            raise ControlError(f"{key}: expected {type(settings[key]).__name__}")
        settings[key] = value
    return settings


def _grant_args() -> tuple[str, str, str, list[str], str | None]:
    """Return (tenant, client, resource, scopes, principal) of a grants request."""
    body = json_body()
    principal = body.get("principal")
    if principal is not None and principal.lower() not in current().state.world.users:
        raise ControlError(f"principal: unknown user {principal!r}")
    resource = str(body.get("resource", GRAPH)).lower().rstrip("/")
    if current().state.world.resource_for(resource) is None:
        raise ControlError(f"resource: unknown resource {resource!r}")
    client_id = str(body.get("client_id", "")).lower()
    if client_id not in current().state.world.apps:
        raise ControlError(f"client_id: unknown app {client_id!r}")
    scopes = [s.rsplit("/", 1)[-1] for s in body.get("scopes", [])]
    return (
        _tenant(str(body.get("tenant", ""))),
        client_id,
        resource,
        scopes,
        principal and principal.lower(),
    )


def post_grants() -> ResponseReturnValue:
    """Add consent (per user, or tenant-wide when principal is null)."""
    return current().state.add_grant(*_grant_args()).as_dict(), 201


def delete_grants() -> ResponseReturnValue:
    """Remove consent; with no scopes, the whole matching grant."""
    return {"removed": current().state.remove_grant(*_grant_args())}


def revoke_refresh_tokens() -> ResponseReturnValue:
    """Revoke matching refresh tokens; their next use gives AADSTS50173."""
    body = json_body()
    username, client_id = body.get("username"), body.get("client_id")
    revoked = 0
    for record in current().state.refresh_tokens.values():
        if username and record.username != username.lower():
            continue
        if client_id and record.client_id != client_id.lower():
            continue
        record.revoked = True
        revoked += 1
    users = current().state.world.users
    for user in users.values():  # revokeSignInSessions is a CAE critical event
        if username and user.username == username.lower():
            user.critical_event_at = time.time()
    return {"revoked": revoked}


def get_requests() -> ResponseReturnValue:
    """Return the request log, filtered by query parameters."""
    return {"requests": current().state.requests(dict(request.args.items()))}


def delete_requests() -> ResponseReturnValue:
    """Clear the request log."""
    current().state.log.clear()
    return {"requests": []}


def reset() -> ResponseReturnValue:
    """Go back to the configuration file's state."""
    current().state.reset()
    return {"reset": True}


def enterprise_app(tenant: str) -> ResponseReturnValue:
    """Change the app's enterprise-app properties in a tenant."""
    body = json_body()
    world = current().state.world
    client_id = str(body.pop("client_id", next(iter(world.apps)))).lower()
    props = world.enterprise_app(_tenant(tenant), client_id)
    for key, value in body.items():
        if not hasattr(props, key):
            raise ControlError(f"{key}: unknown enterprise-app property")
        if key == "assigned_users":
            value = [str(v).lower() for v in value]
        setattr(props, key, value)
    if body.get("deleted") is True:  # deleting a service principal deletes its grants with it
        state = current().state
        state.grants = [
            g for g in state.grants if (g.tenant, g.client_id) != (_tenant(tenant), client_id)
        ]
    return vars(props)


def policy(tenant: str) -> ResponseReturnValue:
    """Change a tenant's user-consent policy and admin consent workflow."""
    body = json_body()
    record = current().state.world.tenants[_tenant(tenant)]
    if "user_consent_policy" in body:
        if body["user_consent_policy"] not in POLICIES:
            raise ControlError(f"user_consent_policy: expected one of {', '.join(POLICIES)}")
        record.policy = body["user_consent_policy"]
    if "admin_consent_workflow" in body:
        record.workflow = bool(body["admin_consent_workflow"])
    if "low_impact_scopes" in body:
        record.low_impact = [str(s) for s in body["low_impact_scopes"]]
    if "allow_consent_apps" in body:  # the mail client policy's apps (client IDs)
        record.consent_apps = [str(a).lower() for a in body["allow_consent_apps"]]
    return {
        "id": record.id,
        "policy": record.policy,
        "workflow": record.workflow,
        "allow_consent_apps": record.consent_apps,
    }


def decide_request(request_id: str, decision: str) -> ResponseReturnValue:
    """Approve (creating a tenant-wide grant) or deny a pending consent request."""
    state = current().state
    pending = state.consent_requests.get(request_id)
    if pending is None or decision not in ("approve", "deny"):
        raise ControlError("unknown consent request or decision")
    pending.status = "approved" if decision == "approve" else "denied"
    if decision == "approve":
        for full in pending.scopes:
            resource, _, name = full.rpartition("/")
            state.add_grant(pending.tenant, pending.client_id, resource, [name], None)
    return vars(pending)


ROUTES: list[tuple[str, tuple[str, ...], Callable[..., ResponseReturnValue]]] = [
    ("/state", ("GET",), get_state),
    ("/apps", ("POST",), post_app),
    ("/apps/<client_id>/expiry", ("POST",), app_expiry),
    ("/settings", ("POST",), post_settings),
    ("/grants", ("POST",), post_grants),
    ("/grants", ("DELETE",), delete_grants),
    ("/refresh-tokens/revoke", ("POST",), revoke_refresh_tokens),
    ("/requests", ("GET",), get_requests),
    ("/requests", ("DELETE",), delete_requests),
    ("/reset", ("POST",), reset),
    ("/tenants/<tenant>/enterprise-app", ("POST",), enterprise_app),
    ("/tenants/<tenant>/policy", ("POST",), policy),
    ("/consent-requests/<request_id>/<decision>", ("POST",), decide_request),
]
