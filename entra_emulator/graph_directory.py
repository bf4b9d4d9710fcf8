"""Graph's directory reads: the user, service principals, consent policies and grants."""

from __future__ import annotations

import re
from typing import Any

from flask import Response
from flask import request

from entra_emulator.graph_common import GraphError
from entra_emulator.minting import service_principal_id
from entra_emulator.resources import user_of
from entra_emulator.runtime import current
from entra_emulator.world import stable_id

POLICY_IDS = {
    "legacy": ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
    "low": ["ManagePermissionGrantsForSelf.microsoft-user-default-low"],
    "recommended-2025": ["ManagePermissionGrantsForSelf.microsoft-user-default-recommended"],
    # "Let Microsoft manage your consent settings" as tenants show it: both managed policies.
    "allow-consent-apps": [
        "ManagePermissionGrantsForSelf.microsoft-user-default-recommended",
        "ManagePermissionGrantsForSelf.microsoft-user-default-allow-consent-apps",
    ],
    "disabled": [],
}


def filter_value(name: str) -> str:
    """Return the quoted value of "$filter=<name> eq '<value>'"."""
    found = re.search(rf"{name}\s+eq\s+'([^']*)'", request.args.get("$filter", ""))
    return found.group(1).lower() if found else ""


def me(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the signed-in user's profile."""
    user = user_of(claims)
    if user is None:
        return None
    return {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": user.oid,
        "displayName": user.display_name,
        "userPrincipalName": user.username,
        "mail": user.username,
    }


def service_principals(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the service principal of an app in the caller's tenant ($filter=appId eq '...')."""
    world, tid = current().state.world, claims["tid"]
    app_id = filter_value("appId")
    resource = next((r for r in world.resources if r.app_id.lower() == app_id), None)
    if resource is not None:  # Microsoft's own APIs have a service principal in every tenant
        sp_id = service_principal_id(tid, resource.app_id)
        return {"value": [{"id": sp_id, "appId": resource.app_id, "displayName": resource.name}]}
    app = world.apps.get(app_id)
    props = world.enterprise_apps.get((tid, app.client_id)) if app is not None else None
    if app is None or props is None or props.deleted:
        return {"value": []}
    tags = ["WindowsAzureActiveDirectoryIntegratedApp"] + (
        [] if props.visible_to_users else ["HideApp"]
    )
    sp = {
        "id": service_principal_id(tid, app.client_id),
        "appId": app.client_id,
        "displayName": app.name,
        "accountEnabled": props.account_enabled,
        "appRoleAssignmentRequired": props.assignment_required,
        "tags": tags,
    }
    return {"value": [sp]}


def assigned_to(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return the users assigned to a service principal."""
    world, tid = current().state.world, claims["tid"]
    for (tenant, client_id), props in world.enterprise_apps.items():
        sp_id = service_principal_id(tenant, client_id)
        if tenant == tid and sp_id == match.group(1).lower():
            users = [world.users[name] for name in props.assigned_users if name in world.users]
            return {"value": [
                {"id": stable_id("assignment", sp_id, u.oid), "principalId": u.oid,
                 "principalDisplayName": u.display_name, "principalType": "User",
                 "resourceId": sp_id, "appRoleId": "00000000-0000-0000-0000-000000000000"}
                for u in users
            ]}  # fmt: skip
    return None


def authorization_policy(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the tenant's authorization policy with the user-consent setting."""
    tenant = current().state.world.tenants[claims["tid"]]
    permissions = {"permissionGrantPoliciesAssigned": POLICY_IDS[tenant.policy]}
    return {"id": "authorizationPolicy", "defaultUserRolePermissions": permissions}


def consent_request_policy(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the admin consent request (workflow) policy."""
    tenant = current().state.world.tenants[claims["tid"]]
    return {"isEnabled": tenant.workflow, "notifyReviewers": True, "requestDurationInDays": 30,
            "reviewers": [], "version": 0}  # fmt: skip


def permission_grants(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return oauth2PermissionGrants ($filter=clientId eq '...' and consentType eq '...')."""
    state, tid = current().state, claims["tid"]
    wanted, kind = filter_value("clientId"), filter_value("consentType")
    with state.lock:
        value = [_grant_json(state, grant) for grant in state.grants if grant.tenant == tid]
    return {
        "value": [
            grant
            for grant in value
            if (not wanted or grant["clientId"] == wanted)
            and (not kind or grant["consentType"].lower() == kind)
        ]
    }


def permission_grant(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Read (GET), change the scope of (PATCH) or delete (DELETE) one oauth2PermissionGrant."""
    state, tid = current().state, claims["tid"]
    with state.lock:
        grant = next(
            (g for g in state.grants if g.tenant == tid and _grant_id(g) == match.group("grant")),
            None,
        )
        if grant is None:
            return None
        if request.method == "GET":
            return _grant_json(state, grant)
        if request.method == "DELETE":
            state.grants.remove(grant)
            return Response(status=204)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("scope"), str):
            raise GraphError(400, "Request_BadRequest", "The scope property is required.")
        scopes = set(body["scope"].split())
        if not scopes:  # Graph keeps a grant with an empty scope; nothing here can use one
            state.grants.remove(grant)
        else:
            grant.scopes = scopes
        return Response(status=204)


def _grant_id(grant: Any) -> str:
    """Return a grant's stable object id."""
    sp_id = service_principal_id(grant.tenant, grant.client_id)
    return stable_id("grant", sp_id, grant.resource, grant.principal or "")


def _grant_json(state: Any, grant: Any) -> dict[str, Any]:
    """Return a grant as Graph's oauth2PermissionGrant resource."""
    user = state.world.users.get(grant.principal or "")
    resource = state.world.resource_for(grant.resource)
    return {
        "id": _grant_id(grant),
        "clientId": service_principal_id(grant.tenant, grant.client_id),
        "consentType": "Principal" if user else "AllPrincipals",
        "principalId": user.oid if user else None,
        # The resource's service principal: one per Microsoft API (its appId) in the tenant.
        "resourceId": service_principal_id(
            grant.tenant, resource.app_id if resource else grant.resource
        ),
        "scope": " ".join(sorted(grant.scopes)),
    }
