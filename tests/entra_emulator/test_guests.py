"""B2B guests (issue 13, item 4): a Fabrikam user invited into Contoso, as Entra issues them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import jwt
import msal
import pytest

from entra_emulator import Emulator
from entra_emulator import config
from entra_emulator.testing import SignInStopped
from entra_emulator.world import ConfigError

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
Connect = Callable[..., dict[str, Any]]
USER_READ = "https://graph.microsoft.com/User.Read"
PERSON = "user@fabrikam.test"
GUEST_UPN = "user_fabrikam.test#EXT#@contoso.onmicrosoft.test"


def _claims(token: str) -> dict[str, Any]:
    """Return a token's claims without checking its signature (the emulator signed it)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _client_info(result: dict[str, Any]) -> dict[str, str]:
    """Decode a token response's client_info."""
    raw = result["client_info"]
    info: dict[str, str] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return info


def _tenant_id(emu: Emulator, domain: str) -> str:
    """Return a tenant's GUID from the control plane."""
    tenants = emu.control("GET", "/_emulator/state").json()["tenants"]
    return next(t["id"] for t in tenants if domain in t["domains"])


def test_a_guest_signs_in_at_the_resource_tenant_with_its_own_object(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    contoso, fabrikam = _tenant_id(emu, "contoso.test"), _tenant_id(emu, "fabrikam.test")
    home = connect(make_cca(), PERSON, [USER_READ])  # organizations: the home tenant
    guest = connect(make_cca("contoso.test"), PERSON, [USER_READ])
    home_id, guest_id = _claims(home["id_token"]), _claims(guest["id_token"])
    assert home_id["tid"] == fabrikam and "idp" not in home_id and "acct" not in home_id
    assert guest_id["tid"] == contoso and guest_id["iss"].endswith(f"/{contoso}/v2.0")
    assert guest_id["oid"] != home_id["oid"]  # a guest's object id is its own per tenant
    assert guest_id["idp"] == f"https://sts.windows.net/{fabrikam}/" and guest_id["acct"] == 1
    assert guest_id["preferred_username"] == PERSON  # known by the name they sign in with
    # client_info names the home account in both: MSAL's home_account_id is the person's.
    assert _client_info(guest) == _client_info(home) == {"uid": home_id["oid"], "utid": fabrikam}
    access = _claims(guest["access_token"])
    assert access["tid"] == contoso and access["oid"] == guest_id["oid"]
    assert "upn" not in access and access["unique_name"] == PERSON and access["acct"] == 1
    users = {u["username"]: u for u in emu.control("GET", "/_emulator/state").json()["users"]}
    assert users[GUEST_UPN]["home"] == PERSON and users[GUEST_UPN]["user_type"] == "Guest"
    assert users[GUEST_UPN]["oid"] == guest_id["oid"]


def test_the_guest_refreshes_at_the_resource_tenant_and_consent_is_that_tenants(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    contoso = _tenant_id(emu, "contoso.test")
    cache = msal.SerializableTokenCache()
    first = connect(make_cca(contoso, cache=cache), PERSON, [USER_READ])
    grants = emu.control("GET", "/_emulator/state").json()["grants"]
    assert {(g["tenant"], g["principal"]) for g in grants} == {(contoso, GUEST_UPN)}
    cca = make_cca(contoso, cache=cache)
    account = cca.get_accounts()[0]
    assert account["home_account_id"].endswith("." + _tenant_id(emu, "fabrikam.test"))
    again = cca.acquire_token_silent_with_error([USER_READ], account, force_refresh=True)
    assert again is not None and "access_token" in again, again
    assert _claims(again["access_token"])["tid"] == contoso != _claims(first["id_token"])["idp"]


def test_someone_not_invited_gets_50020_at_the_tenant(
    make_cca: CcaFactory, connect: Connect
) -> None:
    with pytest.raises(SignInStopped) as stopped:
        connect(make_cca("contoso.test"), "user@northwind.test", [USER_READ])
    assert "AADSTS50020" in stopped.value.text


def test_the_control_plane_invites_and_removes_a_guest(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    invited = emu.control(
        "POST", "/_emulator/guests", json={"user": "user@northwind.test", "tenant": "fabrikam.test"}
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["username"] == "user_northwind.test#EXT#@fabrikam.test"
    result = connect(make_cca("fabrikam.test"), "user@northwind.test", [USER_READ])
    assert _claims(result["id_token"])["oid"] == invited.json()["oid"]
    listed = emu.control("GET", "/_emulator/guests").json()["guests"]
    assert {g["home"] for g in listed} == {PERSON, "user@northwind.test"}
    removed = emu.control(
        "DELETE",
        "/_emulator/guests",
        json={"user": "user@northwind.test", "tenant": "fabrikam.test"},
    )
    assert removed.json()["removed"] == ["user_northwind.test#EXT#@fabrikam.test"]
    answer = make_cca("fabrikam.test").acquire_token_by_refresh_token(
        result["refresh_token"], [USER_READ]
    )
    assert answer.get("error_codes") == [50173]
    with pytest.raises(SignInStopped):
        connect(make_cca("fabrikam.test"), "user@northwind.test", [USER_READ])
    bad = emu.control("POST", "/_emulator/guests", json={"user": PERSON, "tenant": "fabrikam.test"})
    assert bad.status_code == 400 and "home tenant" in bad.text


def test_a_world_file_names_the_bad_key_of_a_guest() -> None:
    base = {
        "tenants": [{"id": "t1", "domains": ["a.test"]}, {"id": "t2", "domains": ["b.test"]}],
        "users": [{"username": "u@a.test", "password": "x"}],
    }
    world = config.build(base | {"guests": [{"user": "u@a.test", "tenant": "b.test", "oid": "g"}]})
    assert world.users["u_a.test#EXT#@b.test"].oid == "g"
    with pytest.raises(ConfigError, match=r"guests\[0\]\.user"):
        config.build(base | {"guests": [{"user": "nobody@a.test", "tenant": "b.test"}]})
