"""MFA at sign-in, an expired password, deleted users and apps (issue 13, items 1 and 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import msal
import pytest
import requests

from entra_emulator import Emulator
from entra_emulator.testing import SignInStopped
from tests.entra_emulator.conftest import PORTAL_ID
from tests.entra_emulator.conftest import REDIRECT

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
Connect = Callable[..., dict[str, Any]]
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
USER = "user@fabrikam.test"
ACCESS = f"/_emulator/users/{USER}/conditional-access"
ACCOUNT = f"/_emulator/users/{USER}/account"
ENTERPRISE_APP = "/_emulator/tenants/fabrikam.test/enterprise-app"


def _refresh(cca: msal.ConfidentialClientApplication, refresh_token: str) -> dict[str, Any]:
    """Return the token endpoint's answer to a refresh, through MSAL."""
    answer: dict[str, Any] = cca.acquire_token_by_refresh_token(refresh_token, [GRAPH_USER_READ])
    return answer


def test_mfa_required_asks_for_the_code_at_sign_in_and_its_tokens_then_refresh(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    before = connect(make_cca(), USER, [GRAPH_USER_READ])  # signed in without MFA
    assert emu.control("POST", ACCESS, json={"mfa": "required"}).ok
    assert _refresh(make_cca(), before["refresh_token"])["error_codes"] == [50076]
    with pytest.raises(SignInStopped) as wrong:  # a wrong code: the page asks again
        connect(make_cca(), USER, [GRAPH_USER_READ], mfa_code="000000")
    assert wrong.value.page == "signin-mfa" and "expected verification code" in wrong.value.text
    after = connect(make_cca(), USER, [GRAPH_USER_READ])  # the demo code
    assert "access_token" in after
    refreshed = _refresh(make_cca(), after["refresh_token"])  # the chain carries the MFA
    assert "access_token" in refreshed
    assert "access_token" in _refresh(make_cca(), refreshed["refresh_token"])  # and rotation


def test_mfa_registration_registers_a_method_and_then_asks_for_it(
    emu: Emulator, make_cca: CcaFactory, connect: Connect, http: requests.Session
) -> None:
    assert emu.control("POST", ACCESS, json={"mfa": "registration"}).ok
    login, ctx = _sign_in_form(make_cca(), http)
    shown = http.post(login, data={"ctx": ctx, "step": "password", "username": USER,
                                   "password": "demo"})  # fmt: skip
    assert "More information required" in shown.text and 'data-page="signin-mfa"' in shown.text
    result = connect(make_cca(), USER, [GRAPH_USER_READ])
    assert "access_token" in result
    assert emu.control("POST", ACCESS, json={}).json()["mfa"] == "required"  # now registered


def _sign_in_form(
    cca: msal.ConfidentialClientApplication, http: requests.Session
) -> tuple[str, str]:
    """Open a sign-in in this browser; return the login form's URL and the flow's ctx."""
    flow = cca.initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT)
    page = http.get(flow["auth_uri"])
    ctx = page.text.split('name="ctx" value="', 1)[1].split('"', 1)[0]
    return requests.compat.urljoin(page.url, "/login"), ctx


def test_a_blocking_policy_stops_the_sign_in_on_entra_s_page(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    assert emu.control("POST", ACCESS, json={"blocked": True}).ok
    with pytest.raises(SignInStopped) as stopped:
        connect(make_cca(), USER, [GRAPH_USER_READ])
    assert stopped.value.code == 53003


def test_a_deleted_user_is_unknown_until_restored(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    result = connect(make_cca(), USER, [GRAPH_USER_READ])
    assert emu.control("POST", ACCOUNT, json={"deleted": True}).json()["deleted"] is True
    refused = _refresh(make_cca(), result["refresh_token"])
    assert refused["error"] == "invalid_grant" and refused["error_codes"] == [50034]
    assert USER in refused["error_description"]
    with pytest.raises(SignInStopped) as stopped:  # the email page: no such account
        connect(make_cca(), USER, [GRAPH_USER_READ])
    assert (stopped.value.code, stopped.value.page) == (50034, "signin-email")
    settings = {"deleted_user_refresh_error": 50173}  # inferred: an operator may choose another
    assert emu.control("POST", "/_emulator/settings", json=settings).ok
    assert _refresh(make_cca(), result["refresh_token"])["error_codes"] == [50173]
    assert emu.control("POST", ACCOUNT, json={"deleted": False}).ok  # restored within 30 days
    assert "access_token" in _refresh(make_cca(), result["refresh_token"])


def test_a_password_change_keeps_confidential_clients_refresh_tokens(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    result = connect(make_cca(), USER, [GRAPH_USER_READ])
    assert emu.control("POST", ACCOUNT, json={"password": "changed"}).ok
    assert "access_token" in _refresh(make_cca(), result["refresh_token"])
    with pytest.raises(SignInStopped) as stopped:  # the old password is refused
        connect(make_cca(), USER, [GRAPH_USER_READ])
    assert stopped.value.code == 50126
    assert "access_token" in connect(make_cca(), USER, [GRAPH_USER_READ], password="changed")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"current_password": "nope", "new_password": "n1", "confirm_password": "n1"}, "incorrect"),
        ({"current_password": "demo", "new_password": "n1", "confirm_password": "n2"}, "match"),
        ({"current_password": "demo", "new_password": "demo", "confirm_password": "demo"}, "reuse"),
    ],
)
def test_an_expired_password_must_be_updated_before_the_sign_in_goes_on(
    emu: Emulator,
    make_cca: CcaFactory,
    connect: Connect,
    http: requests.Session,
    form: dict[str, str],
    error: str,
) -> None:
    assert emu.control("POST", ACCOUNT, json={"password_expired": True}).ok
    with pytest.raises(SignInStopped) as stopped:
        connect(make_cca(), USER, [GRAPH_USER_READ])
    assert (stopped.value.code, stopped.value.page) == (50055, "signin-update-password")
    login, ctx = _sign_in_form(make_cca(), http)
    skipped = http.post(login, data={"ctx": ctx, "step": "update_password", "username": USER,
                                     **form})  # fmt: skip
    assert "Update your password" not in skipped.text  # not before the password was checked
    http.post(login, data={"ctx": ctx, "step": "password", "username": USER, "password": "demo"})
    answer = http.post(login, data={"ctx": ctx, "step": "update_password", "username": USER,
                                    **form})  # fmt: skip
    assert "Update your password" in answer.text and error in answer.text
    result = connect(make_cca(), USER, [GRAPH_USER_READ], new_password="new-demo")
    assert "access_token" in result
    assert "access_token" in connect(make_cca(), USER, [GRAPH_USER_READ], password="new-demo")


def test_a_deleted_enterprise_app_answers_700016_until_consent_adds_it_back(
    emu: Emulator, make_cca: CcaFactory, connect: Connect, http: requests.Session
) -> None:
    result = connect(make_cca(), USER, [GRAPH_USER_READ])
    deleted = emu.control("POST", ENTERPRISE_APP, json={"deleted": True}).json()
    assert deleted["deleted"] is True
    state = emu.control("GET", "/_emulator/state").json()
    (fabrikam,) = [t["id"] for t in state["tenants"] if t["name"] == "Fabrikam"]
    assert not [
        g for g in state["grants"] if (g["tenant"], g["client_id"]) == (fabrikam, PORTAL_ID)
    ]
    refused = _refresh(make_cca(), result["refresh_token"])
    assert refused["error"] == "unauthorized_client" and refused["error_codes"] == [700016]
    again = connect(make_cca(), USER, [GRAPH_USER_READ])  # consent again re-creates it
    assert "access_token" in again
    tenants = emu.control("GET", "/_emulator/state").json()["tenants"]
    (props,) = [t["enterprise_apps"][PORTAL_ID] for t in tenants if t["id"] == fabrikam]
    assert props["deleted"] is False


def test_a_silent_sign_in_that_needs_mfa_goes_back_with_interaction_required(
    emu: Emulator, make_cca: CcaFactory, http: requests.Session
) -> None:
    cca = make_cca()
    first = cca.initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT)
    emu.sign_in(first["auth_uri"], USER, session=http)  # this browser is signed in, no MFA yet
    assert emu.control("POST", ACCESS, json={"mfa": "required"}).ok
    silent = cca.initiate_auth_code_flow([GRAPH_USER_READ], redirect_uri=REDIRECT, prompt="none")
    answer = http.get(silent["auth_uri"], allow_redirects=False)
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back["error"] == ["interaction_required"]
    assert back["error_description"][0].startswith("AADSTS50076: ")
    assert back["state"] == [silent["state"]]
