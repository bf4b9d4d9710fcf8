"""`consent-portal demo` runs the emulator and the portal, lists the accounts, stops on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow


def free_ports(count: int) -> list[int]:
    """Return ports that were free a moment ago (the emulator takes port and port + 1)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe, socket.socket() as neighbour:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        found.append(port)
    return found


def test_demo_runs_both_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, emulator_port = free_ports(2)
    script = Path(sys.executable).parent / "consent-portal"
    command = [
        str(script),
        "--instance",
        str(tmp_path / "instance"),
        "demo",
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page = wait_for(f"http://127.0.0.1:{port}/", process)
        assert "Connect a data tool" in page
        ca = tmp_path / "instance" / "emulator" / "ca.pem"
        discovery = requests.get(
            f"https://127.0.0.1:{emulator_port}/organizations/v2.0/.well-known/openid-configuration",
            verify=str(ca),
            timeout=5,
        )
        assert discovery.json()["authorization_endpoint"].startswith(
            f"http://127.0.0.1:{emulator_port + 1}/"
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output[-3000:]
    assert f"http://127.0.0.1:{port}/" in output
    for account in ("user@fabrikam.test", "admin@contoso.test", "pat@outlook.test"):
        assert account in output
    assert "password: demo" in output


def wait_for(url: str, process: subprocess.Popen[str]) -> str:
    """Return the page once the demo answers, failing fast if it died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the demo exited early: {process.stdout.read() if process.stdout else ''}")
        try:
            return requests.get(url, timeout=2).text
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail("the demo did not answer within 60 s")
