"""`consent-portal demo`: the Entra emulator and the portal together, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from app.cli import portal
from app.platform import instance
from app.platform import staff

DEMO_ACCOUNTS = (
    ("user@fabrikam.test", "can consent to everything: the happy path"),
    ("user@contoso.test", "meets 'Need admin approval' for SharePoint, OneDrive, Outlook"),
    ("admin@contoso.test", "Global Administrator of contoso.test"),
    ("helpdesk@contoso.test", "the portal's helpdesk role"),
    ("user@northwind.test", "not assigned to the app: AADSTS50105"),
    ("pat@outlook.test", "a personal Microsoft account"),
)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Portal port."
)
@click.option(
    "--emulator-port",
    type=click.IntRange(1, 65534),  # its sign-in pages take the next port
    default=5443,
    show_default=True,
    help="Emulator HTTPS port; its sign-in pages use the next port.",
)
def demo(port: int, emulator_port: int) -> None:
    """Start the Entra emulator and the portal on embedded defaults."""
    from entra_emulator import serve

    folder = Path(instance.path())
    with serve(
        port=emulator_port, http_port=emulator_port + 1, state_dir=folder / "emulator"
    ) as emu:
        settings = emu.portal_settings() | {
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            staff.DEMO_IDS_KEY: {  # a username in PORTAL_ADMIN_USERS is refused with these
                user.username: f"{user.tenant}/{user.oid}"
                for user in emu.state.world.users.values()
                if not user.personal
            },
        }
        server = make_server("127.0.0.1", port, portal.build(settings), threaded=True)
        instance.record_demo(folder, settings)  # commands run beside the demo print its URLs
        try:
            _print_banner(port, emu.base_url, emu.browser_url)
            _serve_until_stopped(server)
        finally:
            instance.forget_demo(folder)
            server.server_close()


def _serve_until_stopped(server: BaseWSGIServer) -> None:
    """Serve in a thread until SIGINT or SIGTERM, then stop the server."""
    stop = threading.Event()
    # Our own handlers: a process started with SIGINT ignored (nohup, a CI job in the
    # background) inherits SIG_IGN, and Python then never raises KeyboardInterrupt.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    serving = threading.Thread(target=_serve, args=(server, stop), name="portal", daemon=True)
    serving.start()
    try:
        while not stop.wait(0.2):  # a timed wait lets the main thread run the handlers
            pass
        click.echo("\nStopping the portal and the emulator.")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.shutdown()
        serving.join()


def _serve(server: BaseWSGIServer, stop: threading.Event) -> None:
    """Serve until shut down; if serving fails, stop the demo rather than hang it."""
    try:
        server.serve_forever()
    finally:
        stop.set()


def _print_banner(port: int, emulator_url: str, browser_url: str) -> None:
    """Print where everything runs and whom to sign in as."""
    click.echo(f"\n  Portal:            http://127.0.0.1:{port}/")
    click.echo(f"  Entra emulator:    {emulator_url} (sign-in pages on {browser_url})")
    click.echo("\n  Demo accounts (password: demo):")
    for username, what in DEMO_ACCOUNTS:
        click.echo(f"    {username:<24} {what}")
    click.echo("\n  Press Ctrl-C to stop both.\n")
