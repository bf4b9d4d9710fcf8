"""The consent-portal command: --instance anywhere, and commands beside a demo use its URLs."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from app.cli import main
from app.platform import instance
from entra_emulator import Emulator
from tests.test_demo import CLI
from tests.test_demo import running_demo
from tests.test_demo import stop
from tests.test_demo import without_portal_env


@pytest.fixture(autouse=True)
def no_portal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's PORTAL_* variables out, and undo what --instance sets."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(instance.ENV, str(tmp_path / "unused"))  # restored after each test


def demo_settings(entra: Emulator, public_url: str) -> dict[str, Any]:
    """Return what a demo on public_url records: its URL and the emulator's settings."""
    return dict(entra.portal_settings()) | {"PUBLIC_URL": public_url}


@pytest.mark.parametrize(
    "args",
    [
        ["--instance", "{folder}", "jobs", "keep-alive"],
        ["jobs", "--instance", "{folder}", "keep-alive"],
        ["jobs", "keep-alive", "--instance", "{folder}"],
    ],
    ids=["before", "between", "after"],
)
def test_instance_is_accepted_before_and_after_the_subcommand(
    tmp_path: Path, args: list[str]
) -> None:
    folder = tmp_path / "chosen"
    result = CliRunner().invoke(main, [a.format(folder=folder) for a in args])
    # No demo runs there and no identity provider is set: the refusal names the folder.
    assert result.exit_code == 1, result.output
    assert f"no demo runs on {folder}" in result.output
    assert "consent-portal demo" in result.output and "PORTAL_AUTHORITY_HOST" in result.output


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["keys", "status"], ["links", "list"]], ids=" ".join
)
def test_commands_that_sign_nobody_in_need_no_identity_provider(
    tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "quiet"
    result = CliRunner().invoke(main, ["--instance", str(folder), *command])
    assert result.exit_code == 0, result.output
    assert (folder / "portal.db").exists()  # it worked on the chosen folder, with no demo


def test_a_command_beside_a_recorded_demo_prints_its_urls(tmp_path: Path, entra: Emulator) -> None:
    folder = tmp_path / "instance"
    folder.mkdir()
    instance.record_demo(folder, demo_settings(entra, "http://127.0.0.1:5610"))
    made = CliRunner().invoke(
        main, ["links", "create", "--connector", "onedrive", "--instance", str(folder)]
    )
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("http://127.0.0.1:5610/l/")
    status = CliRunner().invoke(main, ["--instance", str(folder), "keys", "status"])
    assert status.exit_code == 0, status.output
    assert re.search(r"^dev1 +0 +newest$", status.output, re.MULTILINE), status.output


def test_an_explicit_public_url_beats_the_demo(
    tmp_path: Path, entra: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "instance"
    folder.mkdir()
    instance.record_demo(folder, demo_settings(entra, "http://127.0.0.1:5610"))
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://portal.example.com")
    args = ["--instance", str(folder), "links", "create", "--connector", "onedrive"]
    made = CliRunner().invoke(main, args)
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("https://portal.example.com/l/")


def test_the_demo_file_is_private_and_forgotten_only_by_its_demo(tmp_path: Path) -> None:
    instance.record_demo(tmp_path, {"PUBLIC_URL": "http://127.0.0.1:5610"})
    recorded = tmp_path / instance.DEMO_FILE
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    assert instance.running_demo(tmp_path) == {"PUBLIC_URL": "http://127.0.0.1:5610"}
    instance.forget_demo(tmp_path)
    assert not recorded.exists()
    recorded.write_text('{"pid": 1, "settings": {}}')  # another demo's file
    instance.forget_demo(tmp_path)
    assert recorded.exists()


def test_flask_app_refuses_instance_it_cannot_honour(app: Flask, tmp_path: Path) -> None:
    result = app.test_cli_runner().invoke(args=["links", "list", "--instance", str(tmp_path)])
    assert result.exit_code == 2
    assert "PORTAL_INSTANCE_PATH" in result.output


@pytest.mark.slow
def test_links_create_beside_a_running_demo_prints_that_demo(tmp_path: Path) -> None:
    folder = tmp_path / "instance"
    with running_demo(folder, instance_after=True) as demo:
        made = subprocess.run(
            [CLI, "--instance", str(folder), "links", "create", "--connector", "onedrive"],
            env=without_portal_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr[-3000:]
        url = made.stdout.strip()
        assert url.startswith(f"http://127.0.0.1:{demo.port}/l/")
        landing = requests.get(url, timeout=10)
        assert landing.status_code == 200
        assert "OneDrive" in landing.text
        assert urlsplit(landing.url).path == urlsplit(url).path  # the landing page, no redirect
        output = stop(demo, signal.SIGTERM)
    assert demo.process.returncode == 0, output[-3000:]
