"""A small Microsoft Graph: the reads the connectors and the readiness check make."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from entra_emulator.minting import service_principal_id
from entra_emulator.resources import TokenProblem
from entra_emulator.resources import bearer
from entra_emulator.resources import has_scope
from entra_emulator.resources import user_of
from entra_emulator.runtime import current
from entra_emulator.scopes import GRAPH
from entra_emulator.world import stable_id

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
READ_DIRECTORY = ("Application.Read.All", "Directory.Read.All")
READ_POLICY = ("Policy.Read.All",)
READ_GRANTS = ("DelegatedPermissionGrant.Read.All", "Directory.Read.All")
POLICY_IDS = {
    "legacy": ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
    "low": ["ManagePermissionGrantsForSelf.microsoft-user-default-low"],
    "recommended-2025": ["ManagePermissionGrantsForSelf.microsoft-user-default-recommended"],
    "disabled": [],
}
Handler = Callable[[dict[str, Any], re.Match[str]], Any]


def _error(status: int, code: str, message: str) -> ResponseReturnValue:
    """Return Graph's error JSON."""
    inner = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": request.headers.get("client-request-id", str(uuid.uuid4())),
    }
    response = jsonify({"error": {"code": code, "message": message, "innerError": inner}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="", authorization_uri="{current().browser_url}/common/oauth2/authorize",'
            f' client_id="{GRAPH_APP_ID}"'
        )
    return response


def _filter_value(name: str) -> str:
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


def site_root(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the tenant's root SharePoint site."""
    tenant = current().state.world.tenants.get(claims["tid"])
    host = f"{(tenant.domains[0] if tenant else 'personal').split('.')[0]}.sharepoint.com"
    return {
        "id": f"{host},{stable_id('site', host)},{stable_id('web', host)}",
        "displayName": "Communication site",
        "name": "",
        "webUrl": f"https://{host}",
    }


def drive_children(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the items at the root of the user's OneDrive."""
    files = [("Quarterly report.xlsx", 48213), ("Roadmap.docx", 20480), ("Photos", None)]
    value = []
    for name, size in files:
        item: dict[str, Any] = {"id": stable_id("item", claims["oid"], name), "name": name}
        item |= {"size": size, "file": {}} if size else {"folder": {"childCount": 3}}
        value.append(item)
    return {"value": value}


def messages(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return a few messages from the user's mailbox."""
    subjects = ["Welcome to your mailbox", "Weekly report", "Lunch on Friday?"]
    return {
        "value": [
            {
                "id": stable_id("message", claims["oid"], s),
                "subject": s,
                "from": {"emailAddress": {"address": "noreply@example.test"}},
                "receivedDateTime": "2025-11-28T09:00:00Z",
            }
            for s in subjects
        ]
    }


def service_principals(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the service principal of an app in the caller's tenant ($filter=appId eq '...')."""
    world, tid = current().state.world, claims["tid"]
    app = world.apps.get(_filter_value("appId"))
    if app is None or (tid, app.client_id) not in world.enterprise_apps:
        return {"value": []}
    props = world.enterprise_apps[(tid, app.client_id)]
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
    """Return oauth2PermissionGrants of a client service principal ($filter=clientId eq ...)."""
    state, tid = current().state, claims["tid"]
    wanted = _filter_value("clientId")
    value = []
    for grant in state.grants:
        sp_id = service_principal_id(grant.tenant, grant.client_id)
        if grant.tenant != tid or (wanted and wanted != sp_id):
            continue
        user = state.world.users.get(grant.principal or "")
        value.append(
            {
                "id": stable_id("grant", sp_id, grant.resource, grant.principal or ""),
                "clientId": sp_id,
                "consentType": "Principal" if user else "AllPrincipals",
                "principalId": user.oid if user else None,
                "resourceId": service_principal_id(tid, grant.resource),
                "scope": " ".join(sorted(grant.scopes)),
            }
        )
    return {"value": value}


DENIED = "Authorization_RequestDenied"
FILES = ("Files.Read", "Files.Read.All", "Files.ReadWrite", "Files.ReadWrite.All", "Sites.Read.All")
MAIL = ("Mail.Read", "Mail.ReadBasic", "Mail.ReadWrite")
# path pattern -> (handler, scopes of which the token needs one, Graph's 403 code)
ROUTES: list[tuple[str, Handler, tuple[str, ...], str]] = [
    (r"v1\.0/me", me, ("User.Read", "User.ReadBasic.All", "Directory.Read.All"), DENIED),
    (r"oidc/userinfo", me, ("User.Read",), DENIED),
    (r"v1\.0/sites/root", site_root, ("Sites.Read.All", "Sites.ReadWrite.All"), "accessDenied"),
    (r"v1\.0/me/drive/root/children", drive_children, FILES, "accessDenied"),
    (r"v1\.0/me/messages", messages, MAIL, "ErrorAccessDenied"),
    (r"v1\.0/servicePrincipals", service_principals, READ_DIRECTORY, DENIED),
    (
        r"v1\.0/servicePrincipals/([0-9a-fA-F-]+)/appRoleAssignedTo",
        assigned_to,
        READ_DIRECTORY,
        DENIED,
    ),
    (r"v1\.0/policies/authorizationPolicy", authorization_policy, READ_POLICY, DENIED),
    (r"v1\.0/policies/adminConsentRequestPolicy", consent_request_policy, READ_POLICY, DENIED),
    (r"v1\.0/oauth2PermissionGrants", permission_grants, READ_GRANTS, DENIED),
]


def graph(path: str) -> ResponseReturnValue:
    """Validate the bearer token, then answer a supported Graph read."""
    try:
        claims = bearer([GRAPH, GRAPH_APP_ID])
    except TokenProblem as problem:
        return _error(401, "InvalidAuthenticationToken", str(problem))
    for pattern, handler, needed, denied in ROUTES:
        match = re.fullmatch(pattern, path.rstrip("/"))
        if match is None:
            continue
        if not has_scope(claims, *needed):
            text = "Access is denied. Check credentials and try again."
            if denied == DENIED:
                text = "Insufficient privileges to complete the operation."
            return _error(403, denied, text)
        body = handler(claims, match)
        if body is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        return jsonify(body)
    return _error(400, "BadRequest", f"Resource not found for the segment '{path.split('/')[-1]}'.")
