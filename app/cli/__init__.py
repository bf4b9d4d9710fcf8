"""The consent-portal command: one module per command, each building its app through portal."""

from __future__ import annotations

import click
from flask import Flask

from app.cli import portal
from app.cli.db import db_group
from app.cli.demo import demo
from app.cli.emulator import emulator
from app.cli.jobs import jobs_group
from app.cli.keys import keys_group
from app.cli.links import links_group
from app.cli.serve import serve

OPERATOR_COMMANDS = (db_group, links_group, jobs_group, keys_group)


def register(app: Flask) -> None:
    """Attach the operator commands to `flask --app app` as well."""
    for command in OPERATOR_COMMANDS:
        app.cli.add_command(command)


@click.group()
def main() -> None:
    """Run and operate the Connector Consent Portal."""


for _command in (demo, serve, emulator, *OPERATOR_COMMANDS):
    main.add_command(_command)
portal.instance_option(main)  # last: it reaches every command added above
