"""The Connector Consent Portal: a Flask application built by create_app()."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from app import blueprints
from app import cli
from app import config
from app import extensions
from app import instance
from app import logs
from app import security
from app.version import __version__

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["__version__", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal from settings, services, blueprints and commands."""
    app = Flask(
        __name__,
        instance_path=instance.path(test_config),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config.load(app, test_config)
    logs.init_app(app)
    extensions.init_app(app)
    security.init_app(app)
    blueprints.register(app)
    cli.register(app)
    return app
