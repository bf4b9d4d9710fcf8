"""Service protection at /token: a rate per (client_id, tenant), then 429 + Retry-After."""

from __future__ import annotations

import time

import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import throttling
from entra_emulator.errors import EntraError

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
FABRIKAM = "fabrikam.test"


def _refresh(http: requests.Session, emu: Emulator, tenant: str = FABRIKAM) -> requests.Response:
    """Send a refresh with an unknown refresh token (throttling comes before the grant)."""
    form = {"client_id": PORTAL_ID, "client_secret": "wrong", "grant_type": "refresh_token",
            "refresh_token": "not-a-token", "scope": "User.Read"}  # fmt: skip
    return http.post(f"{emu.base_url}/{tenant}/oauth2/v2.0/token", data=form, timeout=10)


def _burst_within_one_second(
    http: requests.Session, emu: Emulator, count: int
) -> tuple[list[requests.Response], int]:
    """Send count refreshes inside one whole second (the window); and the log's length before."""
    for _ in range(5):
        before = len(emu.request_log(endpoint="token"))
        time.sleep(1 - time.time() % 1 + 0.005)  # just after a whole second
        started = time.time()
        answers = [_refresh(http, emu) for _ in range(count)]
        if int(time.time()) == int(started):
            return answers, before
    pytest.fail(f"{count} refreshes never fitted in one second on this machine")


def test_off_by_default(emu: Emulator, http: requests.Session) -> None:
    assert (
        emu.control("GET", "/_emulator/state").json()["settings"]["token_requests_per_second"] == 0
    )
    assert all(_refresh(http, emu).status_code == 401 for _ in range(12))


def test_over_the_rate_answers_429_with_retry_after(emu: Emulator, http: requests.Session) -> None:
    emu.control("POST", "/_emulator/settings", json={"token_requests_per_second": 3})
    answers, before = _burst_within_one_second(http, emu, 5)
    assert [a.status_code for a in answers[:3]] == [401, 401, 401]  # admitted: the bad secret
    throttled = answers[3]
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"] == "temporarily_unavailable"
    assert throttled.json()["error_codes"] == [90033]
    assert _refresh(http, emu, "contoso.test").status_code == 401  # another tenant: its own rate
    time.sleep(1.05)
    assert _refresh(http, emu).status_code == 401  # the window moved on
    log = emu.request_log(endpoint="token")[before:]
    assert [e["status"] for e in log].count(429) == 2
    assert all(e["received"] <= e["time"] for e in log)
    assert {e["refresh_token_fingerprint"] for e in log} == {log[0]["refresh_token_fingerprint"]}
    assert "not-a-token" not in str(log)


def test_the_window_is_each_whole_second(emu: Emulator) -> None:
    state = emu.state
    state.settings["token_requests_per_second"] = 2
    throttling.check(state, "app", "t", now=100.0)
    throttling.check(state, "app", "t", now=100.5)
    with pytest.raises(EntraError) as refused:
        throttling.check(state, "app", "t", now=100.9)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "1"}
    throttling.check(state, "app", "t", now=101.01)  # a new second
    throttling.check(state, "other-app", "t", now=101.02)  # per app
    throttling.check(state, "app", "T", now=101.2)  # tenants compare case-blind: the second
    with pytest.raises(EntraError):
        throttling.check(state, "app", "t", now=101.3)
