"""Locate the instance folder, where every subcommand keeps its state."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV = "PORTAL_INSTANCE_PATH"


def path(overrides: Mapping[str, Any] | None = None) -> str:
    """Return the absolute instance folder: overrides, PORTAL_INSTANCE_PATH, or ./instance."""
    chosen = (overrides or {}).get("INSTANCE_PATH") or os.environ.get(ENV) or "instance"
    folder = Path(chosen).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(folder)
