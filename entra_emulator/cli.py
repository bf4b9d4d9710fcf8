"""The emulator's command line: serve until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from entra_emulator.emulator import Emulator
from entra_emulator.world import ConfigError


def parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    p = argparse.ArgumentParser(prog="entra_emulator", description=__doc__)
    p.add_argument("--port", type=int, default=5443, help="HTTPS port (default 5443)")
    p.add_argument(
        "--http-port", type=int, default=None, help="browser pages port (default port+1)"
    )
    p.add_argument("--state-dir", type=Path, default=Path("instance/emulator"), help="CA and keys")
    p.add_argument(
        "--config", type=Path, default=None, help="world TOML file (default: demo world)"
    )
    p.add_argument("--no-control-plane", action="store_true", help="disable /_emulator/")
    p.add_argument("--verbose", action="store_true", help="log every request")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM; return the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    try:
        emulator = Emulator(
            args.port, args.http_port, args.state_dir, args.config, not args.no_control_plane
        )
    except ConfigError as exc:
        print(f"entra_emulator: configuration error: {exc}")
        return 2
    except OSError as exc:
        print(f"entra_emulator: cannot listen: {exc}")
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emulator.start()
    print(f"Entra emulator: {emulator.base_url} (authority host), pages on {emulator.browser_url}")
    print(f"Trust this CA: {emulator.ca_path}")
    stop.wait()
    emulator.stop()
    return 0
