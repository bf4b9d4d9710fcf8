"""The consent-portal command: demo, serve, emulator, and operator commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask

from app.cli.consent import deliver_command
from app.cli.consent import expire_requests_command
from app.cli.helpdesk import jobs_group
from app.cli.helpdesk import links_group
from app.cli.keys import keys_group
from app.platform import instance

ROOT = Path(__file__).resolve().parents[2]
DEMO_ACCOUNTS = (
    ("user@fabrikam.test", "can consent to everything: the happy path"),
    ("user@contoso.test", "meets 'Need admin approval' for SharePoint, OneDrive, Outlook"),
    ("admin@contoso.test", "Global Administrator of contoso.test"),
    ("helpdesk@contoso.test", "the portal's helpdesk role"),
    ("user@northwind.test", "not assigned to the app: AADSTS50105"),
    ("pat@outlook.test", "a personal Microsoft account"),
)


def register(app: Flask) -> None:
    """Attach the operator commands to `flask --app app` as well."""
    app.cli.add_command(db_group)
    app.cli.add_command(links_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(keys_group)


@click.group()
@click.option(
    "--instance",
    "instance_dir",
    type=click.Path(file_okay=False),
    help="Instance folder for state (default ./instance or PORTAL_INSTANCE_PATH).",
)
def main(instance_dir: str | None) -> None:
    """Run and operate the Connector Consent Portal."""
    if instance_dir:
        os.environ[instance.ENV] = str(Path(instance_dir).resolve())


@main.command()
@click.option("--port", default=5000, show_default=True, help="Portal port.")
@click.option(
    "--emulator-port",
    default=5443,
    show_default=True,
    help="Emulator HTTPS port; its sign-in pages use the next port.",
)
def demo(port: int, emulator_port: int) -> None:
    """Start the Entra emulator and the portal on embedded defaults."""
    from werkzeug.serving import make_server

    from app import create_app
    from entra_emulator import serve

    state_dir = Path(instance.path()) / "emulator"
    with serve(port=emulator_port, http_port=emulator_port + 1, state_dir=state_dir) as emulator:
        settings = emulator.portal_settings() | {"PUBLIC_URL": f"http://127.0.0.1:{port}"}
        portal = create_app(settings)
        server = make_server("127.0.0.1", port, portal, threaded=True)
        _print_banner(port, emulator.base_url, emulator.browser_url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("\nStopping the portal and the emulator.")
        finally:
            server.server_close()


def _print_banner(port: int, emulator_url: str, browser_url: str) -> None:
    """Print where everything runs and whom to sign in as."""
    click.echo(f"\n  Portal:            http://127.0.0.1:{port}/")
    click.echo(f"  Entra emulator:    {emulator_url} (sign-in pages on {browser_url})")
    click.echo("\n  Demo accounts (password: demo):")
    for username, what in DEMO_ACCOUNTS:
        click.echo(f"    {username:<24} {what}")
    click.echo("\n  Press Ctrl-C to stop both.\n")


@main.command()
@click.option("--port", default=None, type=int, help="Bind port (default from gunicorn.conf.py).")
@click.option("--workers", default=None, type=int, help="Worker processes.")
def serve(port: int | None, workers: int | None) -> None:
    """Run the portal under gunicorn with the committed gunicorn.conf.py."""
    if port is not None:
        os.environ["PORTAL_BIND"] = f"0.0.0.0:{port}"
    if workers is not None:
        os.environ["PORTAL_WORKERS"] = str(workers)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "gunicorn.conf.py"),
        "app:create_app()",
    ]
    os.execv(sys.executable, argv)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Entra emulator alone (--port Q --state-dir D; see --help)."""
    from entra_emulator.cli import main as emulator_main

    sys.exit(emulator_main(list(ctx.args)))


@click.group("db")
def db_group() -> None:
    """Manage the portal's database."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from app import create_app
    from app.platform import database

    app = create_app({"DATABASE_CHECK": False})
    database.upgrade(app)
    click.echo("The database is up to date.")


main.add_command(db_group)
main.add_command(links_group)
main.add_command(jobs_group)
jobs_group.add_command(expire_requests_command)  # issue 4
jobs_group.add_command(deliver_command)
main.add_command(keys_group)
