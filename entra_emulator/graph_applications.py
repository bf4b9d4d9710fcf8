"""Graph's application objects: an app registration with its secrets' and certificates' dates.

`GET /v1.0/applications?$filter=appId eq '{id}'` and `GET /v1.0/applications(appId='{id}')`
answer as Graph does: passwordCredentials carry keyId, displayName, hint and the dates, never the
secret; keyCredentials carry the certificate's thumbprint and dates, not the key.
"""

from __future__ import annotations

import re
from typing import Any

from entra_emulator import app_credentials
from entra_emulator.graph_common import METADATA
from entra_emulator.graph_directory import filter_value
from entra_emulator.runtime import current
from entra_emulator.world import App
from entra_emulator.world import stable_id

ALL = r"v1\.0/applications"
BY_APP_ID = r"v1\.0/applications\(appId='(?P<app_id>[^']*)'\)"


def applications(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return the caller's tenant's app registrations, filtered by appId when asked."""
    wanted = filter_value("appId")
    found = [app for app in _registered(claims["tid"]) if not wanted or app.client_id == wanted]
    return {"@odata.context": f"{METADATA}applications", "value": [_application(a) for a in found]}


def application(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one app registration by appId, or None (404) when the tenant has none such."""
    wanted = match.group("app_id").lower()
    app = next((a for a in _registered(claims["tid"]) if a.client_id == wanted), None)
    if app is None:
        return None
    return {"@odata.context": f"{METADATA}applications/$entity"} | _application(app)


def _registered(tenant_id: str) -> list[App]:
    """Return the apps registered in a tenant (an app without a home tenant: in every one)."""
    apps = current().state.world.apps.values()
    return [app for app in apps if app.home_tenant in (None, tenant_id)]


def _application(app: App) -> dict[str, Any]:
    """Return an app as Graph's application resource (the properties the portal reads)."""
    return {
        "id": stable_id("application", app.client_id),
        "appId": app.client_id,
        "displayName": app.name,
        "signInAudience": "AzureADandPersonalMicrosoftAccount"
        if app.personal_accounts
        else "AzureADMultipleOrgs"
        if app.multi_tenant
        else "AzureADMyOrg",
        "passwordCredentials": app_credentials.password_credentials(app),
        "keyCredentials": app_credentials.key_credentials(app),
    }
