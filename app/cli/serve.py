"""`consent-portal serve`: the portal under gunicorn with the committed gunicorn.conf.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Bind port (default from gunicorn.conf.py).",
)
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.")
def serve(port: int | None, workers: int | None) -> None:
    """Run the portal under gunicorn with the committed gunicorn.conf.py."""
    if port is not None:
        os.environ["PORTAL_BIND"] = f"0.0.0.0:{port}"
    if workers is not None:
        os.environ["PORTAL_WORKERS"] = str(workers)
    config = str(ROOT / "gunicorn.conf.py")
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", config, "app:create_app()"])
