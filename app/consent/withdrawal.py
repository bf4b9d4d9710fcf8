"""Withdraw a connector's tenant-wide consent: its scopes leave the grant at Graph; Flask-free.

Entra keeps one AllPrincipals oauth2PermissionGrant per (portal, resource API) in a tenant, so
SharePoint and OneDrive share the Graph grant: withdrawing one removes only its scopes (PATCH)
and deletes the grant when nothing else is left in it (DELETE). The admin's own delegated token
does it, with DelegatedPermissionGrant.ReadWrite.All asked for only when they press Withdraw.
"""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import delete

from app.connectors import GRAPH
from app.connectors import Connector
from app.consent.readiness import Graph
from app.models import DB
from app.models import AuditEvent
from app.models import TenantConsent
from app.models import utcnow

SCOPES = (
    f"{GRAPH}/DelegatedPermissionGrant.ReadWrite.All",  # change or delete the grant
    f"{GRAPH}/Application.Read.All",  # find the portal's and the API's service principals
)
WHY = {
    SCOPES[0]: "to change or remove the permissions granted to the portal for everyone",
    SCOPES[1]: "to find the portal and the connector's API in your organisation's directory",
}
SIGN_IN = Connector(
    id="withdraw",
    name="Withdraw consent",
    resource=GRAPH,
    scopes=SCOPES,
    account_types=frozenset({"work"}),
    description="Changes the portal's tenant-wide permission grant at Microsoft.",
    admin_consent_likely=True,
    data_plane_note="",
)
# The application ids of the Microsoft APIs the connectors read (the same in every tenant).
API_APP_IDS = {
    GRAPH: "00000003-0000-0000-c000-000000000000",
    "https://storage.azure.com": "e406a681-f3d4-42a8-90b6-c2b029497af1",
}
DYNAMICS_APP_ID = "00000007-0000-0000-c000-000000000000"  # every *.dynamics.com organisation
WITHDRAWN = "tenant_consent.withdrawn"
RESULTS = {
    "deleted": "the grant was deleted at Microsoft",
    "narrowed": "its permissions were taken out of the grant it shared with other connectors",
    "absent": "Microsoft had no such grant any more",
}


def api_app_id(resource: str) -> str | None:
    """Return the application id of the Microsoft API a connector's resource belongs to."""
    resource = resource.lower().rstrip("/")
    if resource.endswith(".dynamics.com"):
        return DYNAMICS_APP_ID
    return API_APP_IDS.get(resource)


def withdraw_at_graph(graph: Graph, client_id: str, connector: Connector) -> str:
    """Remove the connector's scopes from the portal's tenant-wide grant; say what happened."""
    app_id = api_app_id(connector.resource)
    portal, api = _sp_id(graph, client_id), _sp_id(graph, app_id) if app_id else None
    if portal is None or api is None:
        return "absent"
    query = f"clientId eq '{portal}' and consentType eq 'AllPrincipals'"
    grants = graph.get(f"oauth2PermissionGrants?$filter={quote(query)}").get("value") or []
    mine = {scope.rsplit("/", 1)[-1].lower() for scope in connector.scopes}
    done = "absent"
    for grant in grants:
        if str(grant.get("resourceId")) != api:
            continue
        scopes = str(grant.get("scope") or "").split()
        left = [scope for scope in scopes if scope.lower() not in mine]
        path = f"oauth2PermissionGrants/{quote(str(grant.get('id')))}"
        if left and len(left) < len(scopes):
            graph.change("PATCH", path, {"scope": " ".join(left)})
            done = "narrowed"
        elif not left:
            graph.change("DELETE", path)
            done = "deleted"
    return done


def forget(db: DB, tenant_id: str, connector: str, admin: str, at_graph: str) -> None:
    """Drop the portal's record of the tenant-wide consent and audit it (the caller commits)."""
    db.execute(
        delete(TenantConsent).where(
            TenantConsent.tenant_id == tenant_id, TenantConsent.connector == connector
        )
    )
    db.add(
        AuditEvent(
            at=utcnow(),
            actor=admin[:320],
            action=WITHDRAWN,
            target=f"{tenant_id}/{connector}"[:160],
            detail={"connector": connector, "result": RESULTS.get(at_graph, at_graph)},
        )
    )


def _sp_id(graph: Graph, app_id: str | None) -> str | None:
    """Return the object id of an application's service principal in the tenant, if any."""
    found = graph.get(f"servicePrincipals?$filter={quote(f'appId eq {app_id!r}')}")
    value = found.get("value") or []
    return str(value[0]["id"]) if value else None
