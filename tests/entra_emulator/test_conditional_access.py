"""Conditional Access at refresh (issue 13): MFA required, MFA registration, a blocking policy."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msal
import pytest

from entra_emulator import Emulator
from entra_emulator.config import build
from entra_emulator.config import load
from entra_emulator.testing import SignInStopped
from entra_emulator.world import ConfigError

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
Connect = Callable[..., dict[str, Any]]
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
USER = "user@fabrikam.test"
ACCESS = f"/_emulator/users/{USER}/conditional-access"


def _refresh(cca: msal.ConfidentialClientApplication) -> dict[str, Any]:
    """Return MSAL's answer to a forced refresh of the one account."""
    (account,) = cca.get_accounts()
    answer: dict[str, Any] = cca.acquire_token_silent_with_error(
        [GRAPH_USER_READ], account, force_refresh=True
    )
    return answer


@pytest.mark.parametrize(
    ("access", "code", "error_value", "suberror"),
    [
        ({"mfa": "required"}, 50076, "invalid_grant", "basic_action"),
        ({"mfa": "registration"}, 50079, "invalid_grant", "basic_action"),
        ({"blocked": True}, 53003, "interaction_required", "message_only"),
    ],
)
def test_refresh_answers_the_policy_with_the_body_msal_reads(
    emu: Emulator,
    make_cca: CcaFactory,
    connect: Connect,
    access: dict[str, object],
    code: int,
    error_value: str,
    suberror: str,
) -> None:
    cca = make_cca()
    connect(cca, USER, [GRAPH_USER_READ])
    assert emu.control("POST", ACCESS, json=access).ok
    error = _refresh(cca)
    assert error["error"] == error_value
    assert error["error_codes"] == [code]
    assert error["error_description"].startswith(f"AADSTS{code}: ")
    assert error["suberror"] == suberror and error["classification"] == suberror
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", error["timestamp"])
    assert error["trace_id"] and error["correlation_id"]
    if code != 53003:
        assert f"access '{GRAPH_APP_ID}'" in error["error_description"]


def test_undoing_the_policy_lets_the_refresh_token_work_again(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    result = connect(make_cca(), USER, [GRAPH_USER_READ])

    def redeem() -> dict[str, Any]:
        # A fresh app each time: MSAL replays a cached invalid_grant for a repeated request.
        answer: dict[str, Any] = make_cca().acquire_token_by_refresh_token(
            result["refresh_token"], [GRAPH_USER_READ]
        )
        return answer

    assert emu.control("POST", ACCESS, json={"mfa": "required", "blocked": True}).ok
    assert redeem()["error_codes"] == [53003]  # the block is checked before MFA
    assert emu.control("POST", ACCESS, json={"blocked": False}).json() == {
        "username": USER,
        "mfa": "required",
        "blocked": False,
        "sign_in_frequency": 0,
    }
    assert redeem()["error_codes"] == [50076]
    assert emu.control("POST", ACCESS, json={"mfa": "off"}).ok
    assert "access_token" in redeem()


def test_no_policy_by_default_and_the_reset_clears_one(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    users = {u.username: u for u in load().users.values()}
    assert all(u.access.mfa == "off" and not u.access.blocked for u in users.values())
    assert emu.control("POST", ACCESS, json={"blocked": True}).ok
    assert emu.control("POST", "/_emulator/reset").ok
    cca = make_cca()
    connect(cca, USER, [GRAPH_USER_READ])
    assert _refresh(cca)["token_source"] == "identity_provider"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"mfa": "sometimes"}, "mfa: expected one of off, required, registration"),
        ({"blocked": "yes"}, "blocked: expected a boolean"),
        ({"frequency": 1}, "frequency: unknown key"),
    ],
)
def test_control_plane_refuses_bad_input(
    emu: Emulator, body: dict[str, object], reason: str
) -> None:
    response = emu.control("POST", ACCESS, json=body)
    assert response.status_code == 400
    assert reason in response.text
    unknown = emu.control(
        "POST", "/_emulator/users/nobody@fabrikam.test/conditional-access", json={}
    )
    assert unknown.status_code == 400 and "unknown user" in unknown.text


def test_world_file_sets_a_users_policy_and_names_bad_keys() -> None:
    data: dict[str, Any] = {
        "tenants": [{"name": "Fabrikam", "domains": ["fabrikam.test"]}],
        "users": [
            {"username": USER, "password": "x", "conditional_access": {"mfa": "registration"}}
        ],
    }
    assert build(data).users[USER].access.mfa == "registration"
    data["users"][0]["conditional_access"] = {"mfa": "never"}
    with pytest.raises(ConfigError, match=r"users\[0\]\.conditional_access\.mfa: expected one of"):
        build(data)
    data["users"][0]["conditional_access"] = {"blocked": 1}
    with pytest.raises(ConfigError, match=r"conditional_access\.blocked: expected bool"):
        build(data)


def test_a_disabled_account_refreshes_and_signs_in_no_more(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    result = connect(make_cca(), USER, [GRAPH_USER_READ])
    account = f"/_emulator/users/{USER}/account"
    assert emu.control("POST", account, json={"disabled": True}).json() == {
        "username": USER,
        "disabled": True,
        "deleted": False,
        "password_expired": False,
    }
    refused: dict[str, Any] = make_cca().acquire_token_by_refresh_token(
        result["refresh_token"], [GRAPH_USER_READ]
    )
    assert refused["error"] == "invalid_grant" and refused["error_codes"] == [50057]
    assert refused["error_description"].startswith("AADSTS50057: The user account is disabled.")
    with pytest.raises(SignInStopped) as stopped:  # the password page says so, no redirect
        connect(make_cca(), USER, [GRAPH_USER_READ])
    assert (stopped.value.code, stopped.value.page) == (50057, "signin-password")
    assert emu.control("POST", account, json={"disabled": False}).ok
    assert "access_token" in make_cca().acquire_token_by_refresh_token(
        result["refresh_token"], [GRAPH_USER_READ]
    )
    bad = emu.control("POST", account, json={"disabled": "yes"})
    assert bad.status_code == 400 and bad.json()["message"] == "disabled: expected a boolean"


def test_world_file_can_start_an_account_disabled() -> None:
    data: dict[str, Any] = {
        "tenants": [{"name": "Fabrikam", "domains": ["fabrikam.test"]}],
        "users": [{"username": USER, "password": "x", "disabled": True}],
    }
    assert build(data).users[USER].disabled
    data["users"][0]["disabled"] = "no"
    with pytest.raises(ConfigError, match=r"users\[0\]\.disabled: expected bool"):
        build(data)


def test_sign_in_frequency_ends_the_chain_counted_from_the_sign_in(
    emu: Emulator, make_cca: CcaFactory, connect: Connect
) -> None:
    first = connect(make_cca(), USER, [GRAPH_USER_READ])["refresh_token"]
    with emu.state.lock:  # the person signed in two hours ago
        emu.state.refresh_tokens[first].signed_in -= 7200
    rotated = make_cca().acquire_token_by_refresh_token(first, [GRAPH_USER_READ])
    assert "access_token" in rotated  # no policy yet
    assert emu.control("POST", ACCESS, json={"sign_in_frequency": 3600}).ok
    refused: dict[str, Any] = make_cca().acquire_token_by_refresh_token(
        rotated["refresh_token"], [GRAPH_USER_READ]
    )  # the rotated token keeps the sign-in's time: rotation does not renew the session
    assert refused["error"] == "invalid_grant" and refused["error_codes"] == [70043]
    assert "sign-in frequency checks by conditional access" in refused["error_description"]
    assert (
        "maximum allowed lifetime for this request is 3600 seconds" in refused["error_description"]
    )
    fresh = connect(make_cca(), USER, [GRAPH_USER_READ])  # a new sign-in starts a new chain
    again = make_cca().acquire_token_by_refresh_token(fresh["refresh_token"], [GRAPH_USER_READ])
    assert "access_token" in again
    bad = emu.control("POST", ACCESS, json={"sign_in_frequency": -1})
    assert bad.status_code == 400 and "whole seconds" in bad.json()["message"]
