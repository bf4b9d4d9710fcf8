"""The portal a command acts on: its instance folder (--instance) and its one app builder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask import current_app
from flask import has_app_context
from flask.cli import ScriptInfo

from app.errors import ConfigError
from app.platform import instance


@contextmanager
def app_context(**overrides: Any) -> Iterator[Flask]:
    """Yield the command's app (see build) inside a request context on its PUBLIC_URL."""
    app = build(overrides)
    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):  # url_for builds links
        yield app


def build(overrides: dict[str, Any] | None = None) -> Flask:
    """Return the running app, the one `flask --app` loads, or one built with the overrides."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    info = click.get_current_context(silent=True)
    script = info.find_object(ScriptInfo) if info is not None else None
    if script is not None:  # flask --app, test runners: their factory, without our overrides
        return script.load_app()
    from app import create_app  # deferred: `consent-portal --help` builds nothing

    try:
        return create_app(overrides)
    except ConfigError as refused:  # a message for the operator, not a traceback
        raise click.ClickException(str(refused)) from None


def instance_option(command: click.Command) -> click.Command:
    """Accept --instance DIR on this command and every subcommand, wherever people type it."""
    command.params.append(
        click.Option(
            ["--instance", "instance_dir"],
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=_use_instance,
            help="Instance folder for state (default ./instance or PORTAL_INSTANCE_PATH).",
        )
    )
    for subcommand in getattr(command, "commands", {}).values():
        instance_option(subcommand)
    return command


def _use_instance(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Point this process, and the servers it starts, at the instance folder."""
    if value is None:
        return
    if ctx.find_object(ScriptInfo) is not None:  # flask --app has built its app already
        raise click.UsageError("with flask --app, set PORTAL_INSTANCE_PATH instead of --instance")
    os.environ[instance.ENV] = str(Path(value).resolve())
