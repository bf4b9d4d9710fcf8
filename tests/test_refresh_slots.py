"""Refresh slots: a few upstream refreshes per worker, a short line, then 503 at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask

from app import extensions
from app.errors import TemporarilyUnavailable
from tests.conftest import connect_account

LATENCY_MS = 4000  # every refresh takes this long at the emulator
STEP = 1.0  # far shorter than LATENCY_MS: each caller is in place before the next one comes


def token(app: Flask, code: str) -> str | TemporarilyUnavailable:
    """Return an access token, or the 503 the broker answered."""
    with app.app_context():
        try:
            return str(extensions.broker().access_token(code)["access_token"])
        except TemporarilyUnavailable as error:
            return error


def test_one_slot_and_one_place_in_line_then_503_at_once(make_portal: Any, entra: Any) -> None:
    portal = make_portal(REFRESH_CONCURRENCY=1, REFRESH_SLOT_WAIT=30)
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    codes = [
        str(connect_account(portal, entra, connector)[1])
        for connector in ("onedrive", "outlook", "sharepoint")
    ]
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    entra.control("DELETE", "/_emulator/requests")
    entra.control("POST", "/_emulator/faults", json={"endpoint": "token", "latency_ms": LATENCY_MS})
    answers: dict[int, str | TemporarilyUnavailable] = {}
    callers = [
        threading.Thread(target=lambda n=n: answers.__setitem__(n, token(portal, codes[n])))
        for n in (0, 1)
    ]
    try:
        callers[0].start()  # takes the slot and waits at the emulator
        time.sleep(STEP)
        callers[1].start()  # waits in line for the slot
        time.sleep(STEP)
        third = token(portal, codes[2])
        assert callers[0].is_alive(), "the third caller was answered only after the slot freed"
        assert isinstance(third, TemporarilyUnavailable)
        assert third.http_headers().get("Retry-After") == "1"
    finally:
        for caller in callers:
            caller.join()
        entra.control("DELETE", "/_emulator/faults")
    assert all(isinstance(answers[n], str) for n in (0, 1)), answers
    grants = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert len(grants) == 2, "the caller in line refreshed once the slot was free"
