"""Resource APIs check bearer tokens like Graph, Dataverse and Azure Storage."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msal
import requests

from entra_emulator import Emulator

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
Connect = Callable[..., dict[str, Any]]
GRAPH = "https://graph.microsoft.com"
STORAGE = "https://storage.azure.com/user_impersonation"
DYNAMICS = "https://contoso.crm.dynamics.com/user_impersonation"
READINESS = [
    f"{GRAPH}/Application.Read.All",
    f"{GRAPH}/Policy.Read.All",
    f"{GRAPH}/Directory.Read.All",
]


def bearer(token: str, **headers: str) -> dict[str, str]:
    """Return request headers carrying a bearer token."""
    return {"Authorization": f"Bearer {token}"} | headers


def test_graph_reads_need_the_right_scope(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    token = connect(make_cca(), "user@fabrikam.test", [f"{GRAPH}/User.Read"])["access_token"]
    me = http.get(f"{emu.base_url}/graph/v1.0/me", headers=bearer(token))
    assert me.json()["userPrincipalName"] == "user@fabrikam.test"
    mail = http.get(f"{emu.base_url}/graph/v1.0/me/messages", headers=bearer(token))
    assert mail.status_code == 403 and mail.json()["error"]["code"] == "ErrorAccessDenied"
    anonymous = http.get(f"{emu.base_url}/graph/v1.0/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer ")


def test_connector_reads_succeed_with_consent(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    scopes = [f"{GRAPH}/Sites.Read.All", f"{GRAPH}/Files.Read.All", f"{GRAPH}/Mail.Read"]
    token = connect(make_cca(), "user@fabrikam.test", scopes, redeem=scopes)["access_token"]
    for path in ("sites/root", "me/drive/root/children", "me/messages"):
        assert http.get(f"{emu.base_url}/graph/v1.0/{path}", headers=bearer(token)).ok, path


def test_graph_refuses_other_audiences_and_expired_tokens(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    listing = f"{emu.base_url}/storage/demostorage/?comp=list"
    storage = connect(make_cca(), "user@fabrikam.test", [STORAGE])["access_token"]
    # Each token is used where it is valid first: a signature once checked is remembered, and
    # audience and expiry must still be checked on every later call.
    assert http.get(listing, headers=bearer(storage, **{"x-ms-version": "2021-08-06"})).ok
    wrong = http.get(f"{emu.base_url}/graph/v1.0/me", headers=bearer(storage))
    assert wrong.status_code == 401 and "audience" in wrong.json()["error"]["message"]
    emu.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3})
    token = connect(make_cca(), "user@fabrikam.test", [STORAGE])["access_token"]
    assert http.get(listing, headers=bearer(token, **{"x-ms-version": "2021-08-06"})).ok
    time.sleep(3.1)
    expired = http.get(listing, headers=bearer(token, **{"x-ms-version": "2021-08-06"}))
    assert expired.status_code == 401 and "<Code>InvalidAuthenticationInfo</Code>" in expired.text


def test_storage_needs_a_data_role_and_a_recent_version(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    url = f"{emu.base_url}/storage/demostorage/?comp=list"
    reader = connect(make_cca(), "user@fabrikam.test", [STORAGE])["access_token"]
    listed = http.get(url, headers=bearer(reader, **{"x-ms-version": "2021-08-06"}))
    assert listed.ok and "<Name>reports</Name>" in listed.text
    old = http.get(url, headers=bearer(reader, **{"x-ms-version": "2015-04-05"}))
    assert old.status_code == 403
    outsider = connect(make_cca(), "user@contoso.test", [STORAGE])["access_token"]
    refused = http.get(url, headers=bearer(outsider, **{"x-ms-version": "2021-08-06"}))
    assert refused.status_code == 403
    assert "<Code>AuthorizationPermissionMismatch</Code>" in refused.text


def test_dynamics_whoami(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    token = connect(make_cca(), "user@contoso.test", [DYNAMICS])["access_token"]
    url = f"{emu.base_url}/dynamics/contoso.crm.dynamics.com/api/data/v9.2/WhoAmI"
    assert http.get(url, headers=bearer(token)).json()["UserId"]
    other = url.replace("contoso.crm", "fabrikam.crm")
    assert http.get(other, headers=bearer(token)).status_code == 401


def test_admin_readiness_reads(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    emu.control(
        "POST", "/_emulator/tenants/contoso.test/enterprise-app", json={"visible_to_users": False}
    )
    token = connect(make_cca(), "admin@contoso.test", READINESS, redeem=READINESS)["access_token"]
    base, headers = f"{emu.base_url}/graph/v1.0", bearer(token)
    app_id = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
    (sp,) = http.get(
        f"{base}/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}, headers=headers
    ).json()["value"]
    assert sp["accountEnabled"] is True and "HideApp" in sp["tags"]
    assert http.get(f"{base}/servicePrincipals/{sp['id']}/appRoleAssignedTo", headers=headers).ok
    policy = http.get(f"{base}/policies/authorizationPolicy", headers=headers).json()
    assigned = policy["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"]
    assert assigned == ["ManagePermissionGrantsForSelf.microsoft-user-default-recommended"]
    workflow = http.get(f"{base}/policies/adminConsentRequestPolicy", headers=headers).json()
    assert workflow["isEnabled"] is False
    grants = http.get(
        f"{base}/oauth2PermissionGrants",
        params={"$filter": f"clientId eq '{sp['id']}'"},
        headers=headers,
    ).json()["value"]
    assert {g["consentType"] for g in grants} == {"Principal"}


def grants(emu: Emulator) -> list[dict[str, Any]]:
    """Return the emulator's grants from its control plane."""
    return list(emu.control("GET", "/_emulator/state").json()["grants"])


def test_an_admin_changes_and_deletes_a_tenant_wide_grant_through_graph(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    """Graph's oauth2PermissionGrant update and delete (issue 14: Withdraw in the portal)."""
    portal = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
    grant = {"tenant": "contoso.test", "client_id": portal, "resource": GRAPH, "principal": None,
             "scopes": [f"{GRAPH}/Files.Read.All", f"{GRAPH}/Sites.Read.All"]}  # fmt: skip
    assert emu.control("POST", "/_emulator/grants", json=grant).status_code == 201
    # Tokens carry every scope the user consented to, so the read-only token comes first.
    reader = connect(make_cca(), "admin@contoso.test", READINESS, redeem=READINESS)["access_token"]
    write = [f"{GRAPH}/DelegatedPermissionGrant.ReadWrite.All", f"{GRAPH}/Application.Read.All"]
    token = connect(make_cca(), "admin@contoso.test", write, redeem=write)["access_token"]
    base, headers = f"{emu.base_url}/graph/v1.0", bearer(token)

    def one(app_id: str) -> dict[str, Any]:
        answer = http.get(
            f"{base}/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}, headers=headers
        )
        assert answer.ok, answer.text
        (found,) = answer.json()["value"]
        return dict(found)

    client, graph = one(portal), one("00000003-0000-0000-c000-000000000000")
    query = f"clientId eq '{client['id']}' and consentType eq 'AllPrincipals'"
    listed = http.get(f"{base}/oauth2PermissionGrants", params={"$filter": query}, headers=headers)
    (tenant_wide,) = listed.json()["value"]
    assert tenant_wide["resourceId"] == graph["id"]
    assert tenant_wide["scope"] == "Files.Read.All Sites.Read.All"
    url = f"{base}/oauth2PermissionGrants/{tenant_wide['id']}"
    assert http.delete(url, headers=bearer(reader)).status_code == 403  # a read scope only

    assert http.patch(url, json={"scope": "Sites.Read.All"}, headers=headers).status_code == 204
    assert http.get(url, headers=headers).json()["scope"] == "Sites.Read.All"
    (kept,) = [g for g in grants(emu) if g["principal"] is None]
    assert [s.rsplit("/", 1)[-1] for s in kept["scopes"]] == ["Sites.Read.All"]
    assert http.post(url, json={}, headers=headers).status_code == 405
    assert http.delete(url, headers=headers).status_code == 204
    assert not [g for g in grants(emu) if g["principal"] is None]
    assert http.delete(url, headers=headers).status_code == 404
