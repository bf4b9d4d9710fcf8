"""C42 and C43 through a real gunicorn on loopback: slow clients and a slow Entra.

Both are bounded (a few seconds, tens of connections) and stop their own load; they assert who
is served, never how fast.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from app.platform import extensions
from app.platform.extensions import db
from bench.rows import seed
from entra_emulator import Emulator
from tests.conftest import free_port
from tests.conftest import gunicorn
from tests.conftest import require_service
from tests.test_serve import wait_until_up
from tests.test_tokens import expired_connection

pytestmark = pytest.mark.slow
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# gunicorn alone gives each unfinished request a thread (a silent one for 5 s, a dripping one
# until it ends): 20 dripping or 200 silent connections stall 2 x 16 threads. The deployment puts
# a buffering proxy in front (docs/operations.md section 3), so the test does too: Caddy, as in
# deploy/compose.yaml, which hands gunicorn only whole requests.
SILENT_CLIENTS = 200
DRIPPING_CLIENTS = 200
REFRESHING = 40  # connections refreshing at once: 5 times the 2 workers' 4+4 refresh places
LATENCY_MS = 2000
OUTBOUND_TIMEOUT = 5  # PORTAL_HTTP_TIMEOUT of the served portal
HANG = OUTBOUND_TIMEOUT * 3  # a refresh waits at most the timeout and its line's 1 s: far less


@pytest.fixture
def fronted(served: str, tmp_path: Path) -> Iterator[str]:
    """Put Caddy in front of the served portal on loopback; yield its URL."""
    caddy = shutil.which("caddy") or os.environ.get("PORTAL_TEST_CADDY", "")
    caddy = require_service(caddy, "PORTAL_TEST_CADDY", "run the buffering-proxy test (caddy)")
    port = free_port()
    config = tmp_path / "Caddyfile"
    upstream = served.removeprefix("http://")
    config.write_text(
        "{\n  admin off\n  auto_https off\n}\n"
        f"http://127.0.0.1:{port} {{\n  reverse_proxy {upstream}\n}}\n"
    )
    env = dict(os.environ) | {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
                              "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    log = (tmp_path / "caddy.log").open("w")
    command = [caddy, "run", "--config", str(config), "--adapter", "caddyfile"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def served(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run `consent-portal serve --workers 2` (16 threads each) with a 5 s outbound timeout."""
    monkeypatch.setenv("PORTAL_HTTP_TIMEOUT", str(OUTBOUND_TIMEOUT))
    with gunicorn(app, tmp_path, workers=2) as (port, process):
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, process)
        yield url


class Slowloris:
    """Connections that never finish a request: some send nothing, some a header line at a time."""

    def __init__(self, port: int, silent: int, dripping: int) -> None:
        self.port = port
        self.silent = silent
        self.dripping = dripping
        self.stop = threading.Event()
        self.opened = threading.Event()
        self.closed_by_server = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Slowloris:
        self._thread.start()
        assert self.opened.wait(30), "the slow clients could not connect"
        self.stop.wait(1.5)  # the dripping ones have sent a few more lines meanwhile
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        """Open every connection, then add one header line to each dripping one every 0.5 s."""
        silent: list[socket.socket] = []
        dripping: list[socket.socket] = []
        try:
            for _ in range(self.silent):
                silent.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
            for _ in range(self.dripping):
                peer = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                peer.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                dripping.append(peer)
            self.opened.set()
            while not self.stop.wait(0.5):
                for peer in list(dripping):
                    try:
                        peer.sendall(f"X-{secrets.token_hex(2)}: 1\r\n".encode())
                    except OSError:  # the server gave up on it: allowed, and counted
                        dripping.remove(peer)
                        self.closed_by_server += 1
        finally:
            for peer in silent + dripping:
                peer.close()


def test_c42_healthy_clients_are_served_while_slow_clients_hold_connections(
    fronted: str, connect: Any
) -> None:
    _, code = connect()
    port = int(fronted.rsplit(":", 1)[1])
    with Slowloris(port, silent=SILENT_CLIENTS, dripping=DRIPPING_CLIENTS):
        for _ in range(3):
            assert requests.get(f"{fronted}/healthz", timeout=20).status_code == 200
            assert requests.get(f"{fronted}/sign-in", timeout=20).status_code == 200
            answer = requests.post(
                f"{fronted}/api/v1/token", headers={"Authorization": f"Bearer {code}"}, timeout=20
            )
            assert answer.status_code == 200 and answer.json()["access_token"]


def test_c43_probes_and_sign_in_are_served_while_refreshes_wait_on_a_slow_entra(
    served: str, app: Flask, entra: Emulator, connect: Any
) -> None:
    """Entra takes 2 s per token call while 40 connections refresh at once (5 x the refresh
    places): /healthz and Authenticate are served all along, each refresh ends in a token or a
    503 with Retry-After, and none outlasts the outbound timeout plus the line's wait (the
    client's timeout below is the hang detector, not a speed assertion: the p95 is benchmarked).
    """
    template, _ = expired_connection(entra, connect)
    with app.app_context():
        codes = seed(db.engine, extensions.vault(), template, REFRESHING, "c43")
    entra.control("POST", "/_emulator/faults", json={"endpoint": "token", "latency_ms": LATENCY_MS})
    answers: list[requests.Response] = []
    start = threading.Barrier(REFRESHING + 1)

    def refresh(code: str) -> None:
        start.wait()
        headers = {"Authorization": f"Bearer {code}"}
        answers.append(requests.post(f"{served}/api/v1/token", headers=headers, timeout=HANG))

    callers = [threading.Thread(target=refresh, args=(code,), daemon=True) for code in codes]
    for caller in callers:
        caller.start()
    start.wait()
    probed = 0
    person = requests.Session()
    while any(caller.is_alive() for caller in callers):
        assert person.get(f"{served}/healthz", timeout=HANG).status_code == 200
        page = person.get(f"{served}/connectors/onedrive", timeout=HANG).text
        token = CSRF.search(page)
        assert token, page
        started = person.post(
            f"{served}/connectors/onedrive/authenticate",
            data={"csrf_token": token.group(1)},
            allow_redirects=False,
            timeout=HANG,
        )
        assert started.status_code == 303
        assert "/oauth2/v2.0/authorize?" in started.headers["Location"]  # on to Entra
        probed += 1
    for caller in callers:
        caller.join()
    entra.control("DELETE", "/_emulator/faults")
    assert probed >= 1 and len(answers) == REFRESHING
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1, statuses  # the refresh places did refresh
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] and answer.json()["error"]
        else:
            assert answer.json()["access_token"]
