"""create_app(): the portal's table of contents, from settings to commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from app import cli
from app import web
from app.platform import config
from app.platform import extensions
from app.platform import instance
from app.platform import logs
from app.platform import metrics
from app.platform import security
from app.web import accounts

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal from settings, services, blueprints and commands."""
    app = Flask(
        "app",
        instance_path=instance.path(test_config),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config.load(app, test_config)
    logs.init_app(app)
    extensions.init_app(app)
    security.init_app(app)
    metrics.init_app(app)
    web.register(app)
    app.before_request(accounts.end_old_sign_in)
    app.context_processor(web.page_globals)
    cli.register(app)
    return app
