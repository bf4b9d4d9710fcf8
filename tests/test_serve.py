"""`consent-portal serve`: gunicorn with two workers refreshes an expired connection once (C31)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from entra_emulator import Emulator
from tests.conftest import gunicorn

pytestmark = pytest.mark.slow
CALLERS = 20


@pytest.fixture
def served(app: Flask, tmp_path: Path) -> Iterator[str]:
    """Run `consent-portal serve --workers 2` on the app's database and instance folder."""
    with gunicorn(app, tmp_path, workers=2) as (port, process):
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process)
        yield url


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for /healthz, failing fast if gunicorn died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited during start-up"
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # bound, workers still booting
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer /healthz within 60 s")


def test_twenty_callers_over_two_workers_cause_one_refresh(
    served: str, entra: Emulator, connect: Any, tmp_path: Path
) -> None:
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    _, code = connect("onedrive", "user@fabrikam.test")
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    entra.control("DELETE", "/_emulator/requests")
    barrier = threading.Barrier(CALLERS)
    answers: list[requests.Response] = []

    def call() -> None:
        with requests.Session() as http:  # one connection per caller, as separate tools would
            barrier.wait()
            answers.append(
                http.post(
                    f"{served}/api/v1/token",
                    headers={"Authorization": f"Bearer {code}"},
                    timeout=60,
                )
            )

    callers = [threading.Thread(target=call) for _ in range(CALLERS)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert [a.status_code for a in answers] == [200] * CALLERS, [a.text for a in answers]
    tokens = {a.json()["access_token"] for a in answers}
    assert len(tokens) == 1, "every caller gets the one refreshed token"
    refreshes = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert len(refreshes) == 1
    booted = (tmp_path / "gunicorn.log").read_text()
    assert booted.count("Booting worker with pid") == 2, booted[-2000:]
    # One access line per request, the portal's own: gunicorn's is opt-in, not a second copy.
    assert booted.count('"msg": "POST /api/v1/token 200"') == CALLERS, booted[-2000:]
    assert "gunicorn.access" not in booted
    assert json.loads(answers[0].text)["connector"] == "onedrive"
