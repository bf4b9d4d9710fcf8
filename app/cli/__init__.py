"""The consent-portal command: one module per command, each building its app through portal."""

from __future__ import annotations

import click
from flask import Flask

from app.cli import portal
from app.cli import verbosity
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
@click.option(
    "--verbose",
    is_flag=True,
    help="Also show the libraries' log lines (Alembic's migration checks, SQLAlchemy's).",
)
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Run and operate the Connector Consent Portal."""
    if not verbose:
        ctx.call_on_close(verbosity.quiet_libraries())  # undone when the command ends


def full_summaries(command: click.Command) -> click.Command:
    """Give every command its docstring's whole first line as summary, which click never cuts."""
    for subcommand in getattr(command, "commands", {}).values():
        if subcommand.help and not subcommand.short_help:
            subcommand.short_help = subcommand.help.strip().splitlines()[0]
        full_summaries(subcommand)
    return command


for _command in (demo, serve, emulator, *OPERATOR_COMMANDS):
    main.add_command(_command)
portal.instance_option(main)  # last: it reaches every command added above
full_summaries(main)
