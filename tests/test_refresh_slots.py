"""Refresh slots: a few upstream refreshes per worker, a short line, then 503 at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask

from app.errors import TemporarilyUnavailable
from app.platform import extensions
from app.tokens.refresh_slots import RefreshSlots
from entra_emulator import Emulator
from tests.signins import connect_account

LATENCY_MS = 4000  # every refresh takes this long at the emulator
STEP = 1.0  # far shorter than LATENCY_MS: each caller is in place before the next one comes


def token(app: Flask, code: str) -> str | TemporarilyUnavailable:
    """Return an access token, or the 503 the broker answered."""
    with app.app_context():
        try:
            return str(extensions.broker().access_token(code)["access_token"])
        except TemporarilyUnavailable as error:
            return error


def test_one_slot_and_one_place_in_line_then_503_at_once(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
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


def test_the_slots_alone_without_a_portal() -> None:
    slots = RefreshSlots(1, wait=5)
    entered = threading.Event()
    waited: list[str] = []

    def in_line() -> None:
        entered.set()
        with slots.hold():
            waited.append("got the slot")

    with slots.hold():
        waiter = threading.Thread(target=in_line)
        waiter.start()
        entered.wait(5)
        time.sleep(0.2)  # the waiter now holds the one place in line
        try:
            with slots.hold():
                raise AssertionError("a third caller must not get in")
        except TemporarilyUnavailable as error:
            assert error.retry_after == 1
        assert waited == []
    waiter.join(5)
    assert waited == ["got the slot"]


def test_a_caller_in_line_gives_up_after_the_wait() -> None:
    slots = RefreshSlots(1, wait=0.05)
    with slots.hold():
        started = time.monotonic()
        try:
            with slots.hold():
                raise AssertionError("the slot is taken")
        except TemporarilyUnavailable:
            assert time.monotonic() - started >= 0.05
    with slots.hold():  # the slot and the line are free again
        pass


def test_a_refused_caller_is_counted_busy() -> None:
    counted: list[str] = []
    slots = RefreshSlots(1, wait=0.01, counted=counted.append)
    with slots.hold():
        with pytest.raises(TemporarilyUnavailable):
            with slots.hold():
                raise AssertionError("the slot is taken")
    with slots.hold():
        pass
    assert counted == ["busy"]  # the metrics hook hears of the refusal, not of the slots given
