"""An operator's CLI that tells the truth: keys status, quiet library logs, named values, help."""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from click.testing import Result
from flask import Flask

from app.cli import main
from app.cli import verbosity
from app.platform import extensions
from app.platform import instance
from app.platform import logs
from app.tokens import keys
from entra_emulator import Emulator
from tests.signins import connect_account

ALEMBIC_LINE = '"logger": "alembic.'


@pytest.fixture(autouse=True)
def no_portal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep PORTAL_* out, undo what --instance sets, and the log levels a CLI app sets."""
    for name in list(os.environ):
        if name.startswith("PORTAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(instance.ENV, str(tmp_path / "unused"))
    names = ["", *logs.QUIET]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():  # the run's DEBUG secret scan wants them back
        logging.getLogger(name).setLevel(level)


def new_key(key_id: str) -> str:
    """Return a PORTAL_ENCRYPTION_KEYS entry with a fresh key."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def table(output: str) -> dict[str, tuple[int, str]]:
    """Return keys status's table below its header: key id -> (rows, state)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["KEY", "ID"])
    rows = {}
    for line in lines[start + 1 :]:
        match = re.fullmatch(r"(\S+)\s+(\d+)\s+(.+)", line)
        if not match:
            break
        rows[match[1]] = (int(match[2]), match[3])
    return rows


def revoke(portal: Flask, connection_id: str) -> None:
    """Revoke a connection the way its owner does: its cache and key id are erased."""
    with portal.app_context():
        extensions.connection_store().revoke(connection_id)


def current_key(portal: Flask) -> str:
    """Return the newest key id of a portal."""
    with portal.app_context():
        return extensions.vault().current_kid


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_keys_status_does_not_count_revoked_connections(
    app: Flask, connect: Callable[..., tuple[str, str | None]]
) -> None:
    connect("onedrive")
    revoke(app, connect("outlook")[0])
    result = app.test_cli_runner().invoke(main, ["keys", "status"])
    assert result.exit_code == 0, result.output
    assert table(result.output) == {current_key(app): (1, "newest")}
    assert "MISSING" not in result.output
    assert "No key id is missing from PORTAL_ENCRYPTION_KEYS." in result.output
    assert "1 revoked connection(s) hold no tokens" in result.output


@pytest.fixture
def on_k1(make_portal: Callable[..., Flask], entra: Emulator, tmp_path: Path) -> dict[str, str]:
    """Return the settings of a database with one live and one revoked connection under k1."""
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'k1.db'}",
        "HASH_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ENCRYPTION_KEYS": new_key("k1"),
    }
    old = make_portal(**settings)
    connect_account(old, entra, "onedrive")
    revoked, _ = connect_account(old, entra, "outlook")
    revoke(old, revoked)
    return settings


def test_keys_status_exits_1_naming_a_really_missing_key(
    make_portal: Callable[..., Flask], on_k1: dict[str, str]
) -> None:
    portal = make_portal(**on_k1 | {"ENCRYPTION_KEYS": new_key("k2")})
    result = portal.test_cli_runner().invoke(main, ["keys", "status"])
    assert result.exit_code == 1, result.output
    assert table(result.stdout) == {
        "k2": (0, "newest"),
        "k1": (1, "MISSING from PORTAL_ENCRYPTION_KEYS"),
    }  # the revoked row, under no key, is in no line
    assert "Missing from PORTAL_ENCRYPTION_KEYS: k1." in result.stderr


def test_rotate_leaves_revoked_connections_alone(
    make_portal: Callable[..., Flask], on_k1: dict[str, str]
) -> None:
    portal = make_portal(
        **on_k1 | {"ENCRYPTION_KEYS": f"{new_key('k2')},{on_k1['ENCRYPTION_KEYS']}"}
    )
    runner = portal.test_cli_runner()
    rotated = runner.invoke(main, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "1 connection(s) to re-seal" in rotated.output
    assert "rotated 1, skipped 0 (written meanwhile), failed 0" in rotated.output
    status = runner.invoke(main, ["keys", "status"])
    assert status.exit_code == 0, status.output
    assert table(status.output) == {"k2": (1, "newest"), "k1": (0, "older, unused: can be removed")}


def run_keys_status(folder: Path, *options: str) -> Result:
    """Run `consent-portal [options] --instance folder keys status` in this process."""
    return CliRunner().invoke(main, [*options, "--instance", str(folder), "keys", "status"])


def test_library_log_lines_show_only_with_verbose(tmp_path: Path) -> None:
    quiet = run_keys_status(tmp_path / "quiet")
    assert quiet.exit_code == 0, quiet.output
    assert ALEMBIC_LINE not in quiet.stderr
    assert "No key id is missing" in quiet.stdout  # the command's own answer still shows
    verbose = run_keys_status(tmp_path / "verbose", "--verbose")
    assert verbose.exit_code == 0, verbose.output
    assert ALEMBIC_LINE in verbose.stderr
    assert "No key id is missing" in verbose.stdout


def test_quiet_keeps_warnings_and_the_portal_own_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.install()
    undo = verbosity.quiet_libraries()
    try:
        logging.getLogger("alembic.runtime.migration").info("routine")
        logging.getLogger("sqlalchemy.pool").error("pool broken")
        logging.getLogger("app.tokens").info("portal line")
    finally:
        undo()
    logging.getLogger("alembic.runtime.migration").info("after undo")
    lines = capsys.readouterr().err
    assert "routine" not in lines
    assert "pool broken" in lines and "portal line" in lines and "after undo" in lines


def connector_ids(portal: Flask) -> str:
    """Return the portal's connector ids as the refusal lists them."""
    with portal.app_context():
        return ", ".join(sorted(extensions.connectors()))


def test_a_bad_connector_is_named_with_the_choices(app: Flask) -> None:
    args = ["links", "create", "--connector", "foo"]
    result = app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"'foo' is not a connector; choose one of: {connector_ids(app)}" in result.output
    missing = app.test_cli_runner().invoke(main, ["links", "create"])
    assert missing.exit_code == 2, missing.output
    assert f"Missing option '--connector': choose one of: {connector_ids(app)}" in missing.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["links", "create", "--connector", "onedrive", "--login-hint", "bob"], "'bob'"),
        (["links", "create", "--connector", "onedrive", "--expires", "7x"], "'7x'"),
        (["links", "create", "--kind", "reconnect", "--connection", "nope"], "'nope'"),
        (["links", "create", "--kind", "sideways"], "'sideways' is not one of"),
        (["links", "revoke", "nope"], "there is no link 'nope'"),
        (["links", "list", "--limit", "0"], "0 is not in the range x>=1"),
        (["keys", "rotate", "--batch-size", "-5"], "-5 is not in the range x>=1"),
        (["jobs", "prune-trail", "--days", "0"], "0 is not in the range x>=1"),
        (["jobs", "keep-alive", "--days", "-1"], "-1 is not in the range x>=0"),
    ],
    ids=lambda arg: " ".join(arg) if isinstance(arg, list) else "",
)
def test_every_refusal_names_the_option_and_the_value(
    app: Flask, args: list[str], named: str
) -> None:
    result = app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '" in result.output
    assert named in result.output


def every_group(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Yield the command path of main and of each group under it."""
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_group(command, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    """Return the command at a path below main."""
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", list(every_group()), ids=lambda p: " ".join(p) or "main")
@pytest.mark.parametrize("width", [60, 100])
def test_help_lists_each_command_with_its_whole_summary(path: tuple[str, ...], width: int) -> None:
    group = command_at(path)
    assert isinstance(group, click.Group)
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    listing = " ".join(result.output.partition("Commands:")[2].split())  # undo the wrapping
    assert "..." not in listing
    for name, command in group.commands.items():
        summary = " ".join((command.help or "").splitlines()[0].split())
        assert summary, f"{name} has no help"
        assert f"{name} {summary}" in listing


def every_command(group: click.Group = main) -> Iterator[click.Command]:
    """Yield every command and group below main."""
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from every_command(command)


def test_every_command_and_option_has_help() -> None:
    for command in every_command():
        assert command.help, command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.opts}"


def test_the_start_up_key_check_passes_revoked_connections(
    make_portal: Callable[..., Flask], on_k1: dict[str, str]
) -> None:
    portal = make_portal(**on_k1)
    with portal.app_context():
        engine, vault = extensions.db.engine, extensions.vault()
        keys.check(engine, vault)  # production's start-up: the revoked row's "" is no key id
        assert keys.unknown(engine, vault) == []
        assert keys.erased(engine) == 1
