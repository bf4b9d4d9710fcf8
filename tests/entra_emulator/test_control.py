"""The control plane: faults, the request log, settings, policies and the state document."""

from __future__ import annotations

from collections.abc import Callable

import msal
import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import serve

CcaFactory = Callable[..., msal.ConfidentialClientApplication]
TOKEN_BODY = {"client_id": "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61", "grant_type": "refresh_token"}


def token_url(emu: Emulator) -> str:
    """Return the contoso token endpoint."""
    return f"{emu.base_url}/contoso.test/oauth2/v2.0/token"


def test_state_lists_tenants_users_and_apps_without_passwords(emu: Emulator) -> None:
    state = emu.control("GET", "/_emulator/state").json()
    assert {t["domains"][0] for t in state["tenants"]} == {
        "contoso.test",
        "fabrikam.test",
        "northwind.test",
    }
    assert all("password" not in user and "secret" not in str(user) for user in state["users"])
    assert "'demo'" not in str(state)  # no user's password value, under any key
    assert {u["password_expired"] for u in state["users"]} == {False}  # only whether it expired
    assert any(u["username"] == "pat@outlook.test" for u in state["users"])
    contoso = next(t for t in state["tenants"] if t["domains"][0] == "contoso.test")
    assert (contoso["policy"], contoso["workflow"]) == ("recommended-2025", False)


def test_429_with_retry_after_then_recovers(emu: Emulator, http: requests.Session) -> None:
    emu.control(
        "POST",
        "/_emulator/faults",
        json={"endpoint": "token", "status": 429, "retry_after": 7, "count": 1},
    )
    throttled = http.post(token_url(emu), data=TOKEN_BODY)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error_codes"] == [90033]
    assert http.post(token_url(emu), data=TOKEN_BODY).status_code == 401  # fault used up
    statuses = [e["status"] for e in emu.request_log(endpoint="token", grant_type="refresh_token")]
    assert statuses == [429, 401]


def test_dropped_connection_and_latency(emu: Emulator, http: requests.Session) -> None:
    emu.control("POST", "/_emulator/faults", json={"endpoint": "token", "drop": True, "count": 1})
    with pytest.raises(requests.ConnectionError):
        http.post(token_url(emu), data=TOKEN_BODY)
    emu.control("POST", "/_emulator/faults", json={"endpoint": "discovery", "latency_ms": 300})
    discovery = f"{emu.base_url}/contoso.test/v2.0/.well-known/openid-configuration"
    slow = http.get(discovery)
    assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.3
    emu.control("DELETE", "/_emulator/faults")
    assert http.get(discovery).elapsed.total_seconds() < 0.3


def test_discovery_503_makes_msal_raise(emu: Emulator, make_cca: CcaFactory) -> None:
    emu.control("POST", "/_emulator/faults", json={"endpoint": "discovery", "status": 503})
    with pytest.raises(msal.exceptions.MsalServiceError):
        make_cca("contoso.test")


def test_request_log_filters_and_clears(emu: Emulator, http: requests.Session) -> None:
    http.post(token_url(emu), data=TOKEN_BODY)
    http.get(f"{emu.base_url}/contoso.test/discovery/v2.0/keys")
    assert len(emu.control("GET", "/_emulator/requests?endpoint=keys").json()["requests"]) == 1
    emu.control("DELETE", "/_emulator/requests")
    assert emu.request_log() == []


def test_bad_control_requests_name_the_problem(emu: Emulator) -> None:
    answer = emu.control("POST", "/_emulator/settings", json={"nope": 1})
    assert answer.status_code == 400 and "nope" in answer.json()["message"]
    answer = emu.control("POST", "/_emulator/grants", json={"tenant": "x.test"})
    assert answer.status_code == 400


def test_policy_switch_changes_future_consent(emu: Emulator) -> None:
    answer = emu.control(
        "POST",
        "/_emulator/tenants/contoso.test/policy",
        json={"user_consent_policy": "disabled", "admin_consent_workflow": True},
    )
    assert answer.json()["policy"] == "disabled"


def test_control_plane_is_off_unless_enabled(tmp_path: object) -> None:
    with serve(control_plane=False) as quiet:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(quiet.ca_path)
        assert session.get(f"{quiet.base_url}/_emulator/state").status_code == 404


def test_browser_port_refuses_back_channel_routes(emu: Emulator) -> None:
    plain = requests.Session()
    plain.trust_env = False
    assert plain.post(f"{emu.browser_url}/contoso.test/oauth2/v2.0/token").status_code == 404
    assert plain.get(f"{emu.browser_url}/_emulator/state").status_code == 404
    discovery = f"{emu.browser_url}/contoso.test/v2.0/.well-known/openid-configuration"
    assert plain.get(discovery).status_code == 404


def test_state_dir_keeps_the_ca_between_starts(tmp_path: object) -> None:
    from pathlib import Path

    state_dir = Path(str(tmp_path))
    with serve(state_dir=state_dir) as first:
        ca = first.ca_path.read_bytes()
    with serve(state_dir=state_dir) as second:
        assert second.ca_path.read_bytes() == ca
