"""`consent-portal demo` runs the emulator and the portal, lists the accounts, stops on a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).parent / "consent-portal")
# What nohup, or a shell starting a job in the background, does: SIGINT ignored across exec.
IGNORING_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]
STOP_WITHIN = 30  # seconds


@dataclass
class Demo:
    """A demo child process and where it listens."""

    process: subprocess.Popen[str]
    port: int
    emulator_port: int
    folder: Path

    @property
    def url(self) -> str:
        """Return the portal's origin."""
        return f"http://127.0.0.1:{self.port}"


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


def without_portal_env() -> dict[str, str]:
    """Return this environment without the developer's PORTAL_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}


@contextmanager
def running_demo(
    folder: Path, wrapper: list[str] | None = None, instance_after: bool = False
) -> Iterator[Demo]:
    """Start a demo on free ports, wait until it answers, and kill it if a test left it up."""
    port, emulator_port = free_ports(2)
    ports = ["--port", str(port), "--emulator-port", str(emulator_port)]
    instance = ["--instance", str(folder)]
    argv = ["demo", *ports, *instance] if instance_after else [*instance, "demo", *ports]
    process = subprocess.Popen(
        [*(wrapper or []), CLI, *argv],
        env=without_portal_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = Demo(process, port, emulator_port, folder)
    try:
        wait_for(demo.url + "/", process)
        yield demo
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=STOP_WITHIN)


def stop(demo: Demo, sig: signal.Signals) -> str:
    """Send the signal and return the demo's output once it has exited, failing if it does not."""
    demo.process.send_signal(sig)
    try:
        output, _ = demo.process.communicate(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        demo.process.kill()
        output, _ = demo.process.communicate(timeout=STOP_WITHIN)
        pytest.fail(f"the demo ignored {sig.name} for {STOP_WITHIN} s: {output[-3000:]}")
    return output


def wait_for(url: str, process: subprocess.Popen[str]) -> str:
    """Return the page once the demo answers, failing fast if it died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the demo exited early: {process.stdout.read() if process.stdout else ''}")
        try:
            return requests.get(url, timeout=2).text
        except (requests.ConnectionError, requests.Timeout):  # still starting
            time.sleep(0.3)
    pytest.fail("the demo did not answer within 60 s")


def listening(port: int) -> bool:
    """Tell whether anything accepts connections on this loopback port."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_both_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with running_demo(tmp_path / "instance") as demo:
        page = requests.get(demo.url + "/", timeout=5).text
        assert "Connect a data tool" in page
        ca = tmp_path / "instance" / "emulator" / "ca.pem"
        discovery = requests.get(
            f"https://127.0.0.1:{demo.emulator_port}/organizations/v2.0/.well-known/openid-configuration",
            verify=str(ca),
            timeout=5,
        )
        assert discovery.json()["authorization_endpoint"].startswith(
            f"http://127.0.0.1:{demo.emulator_port + 1}/"
        )
        output = stop(demo, signal.SIGINT)
    assert demo.process.returncode == 0, output[-3000:]
    assert f"http://127.0.0.1:{demo.port}/" in output
    for account in ("user@fabrikam.test", "admin@contoso.test", "pat@outlook.test"):
        assert account in output
    assert "password: demo" in output


def test_the_wrapper_starts_a_child_with_sigint_ignored() -> None:
    shown = subprocess.run(
        [
            *IGNORING_SIGINT,
            sys.executable,
            "-c",
            "import signal; print(signal.getsignal(2) == signal.SIG_IGN)",
        ],
        capture_output=True,
        text=True,
        timeout=STOP_WITHIN,
    )
    assert shown.stdout.strip() == "True"  # the condition the next test needs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_demo_started_with_sigint_ignored_still_stops(
    tmp_path: Path, sig: signal.Signals
) -> None:
    folder = tmp_path / "instance"
    with running_demo(folder, wrapper=IGNORING_SIGINT) as demo:
        assert (folder / "demo.json").exists()
        started = time.monotonic()
        output = stop(demo, sig)
    assert demo.process.returncode == 0, output[-3000:]
    assert time.monotonic() - started < STOP_WITHIN
    assert "Stopping the portal and the emulator." in output
    for port in (demo.port, demo.emulator_port, demo.emulator_port + 1):
        assert not listening(port), f"port {port} still answers after the demo stopped"
    assert not (folder / "demo.json").exists()  # commands beside it no longer find a demo
