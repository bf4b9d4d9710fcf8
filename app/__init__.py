"""The Connector Consent Portal: a Flask application built by create_app()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal (see app/factory.py); importing a domain module alone loads no Flask."""
    from app import factory  # deferred: `import app.tokens.vault` must not pull in Flask

    return factory.create_app(test_config)
