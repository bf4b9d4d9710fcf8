"""The instance folder: where it is, and the files development keeps in it (keys, the demo)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.tokens import vault

ENV = "PORTAL_INSTANCE_PATH"
DEV_KEYS_FILE = "dev-keys.json"
DEV_KEYS = ("SECRET_KEY", "ENCRYPTION_KEYS", "HASH_KEY")
DEMO_FILE = "demo.json"


def path(overrides: Mapping[str, Any] | None = None) -> str:
    """Return the absolute instance folder: overrides, PORTAL_INSTANCE_PATH, or ./instance."""
    chosen = (overrides or {}).get("INSTANCE_PATH") or os.environ.get(ENV) or "instance"
    folder = Path(chosen).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # keys, the database and the demo's settings live here: owner only (C54)
    return str(folder)


def dev_keys(folder: Path) -> dict[str, str]:
    """Return the development keys, generating them once into the instance folder (0600)."""
    file = folder / DEV_KEYS_FILE
    if not file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fresh = {
            "SECRET_KEY": vault.generate_key(),
            "ENCRYPTION_KEYS": f"dev1:{vault.generate_key()}",
            "HASH_KEY": vault.generate_key(),
        }
        try:  # O_EXCL: two processes starting together keep one set of keys
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(fresh, handle)
            return fresh
    data = json.loads(file.read_text())
    if not all(isinstance(data.get(name), str) for name in DEV_KEYS):
        raise ConfigError(f"{file} is damaged; delete it to generate new development keys")
    return {name: data[name] for name in DEV_KEYS}


def record_demo(folder: Path, settings: Mapping[str, Any]) -> None:
    """Write the running demo's portal settings (0600) for commands started beside it."""
    body = json.dumps({"pid": os.getpid(), "settings": dict(settings)})
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".demo-", suffix=".json")  # 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(body)
    os.replace(temporary, folder / DEMO_FILE)  # a reader sees the old file or the whole new one


def forget_demo(folder: Path) -> None:
    """Remove the demo's settings, unless a later demo on this folder has replaced them."""
    if _read_demo(folder).get("pid") == os.getpid():
        (folder / DEMO_FILE).unlink(missing_ok=True)


def running_demo(folder: Path) -> dict[str, Any] | None:
    """Return the settings of the demo running on this folder, or None if none runs."""
    recorded = _read_demo(folder)
    pid, settings = recorded.get("pid"), recorded.get("settings")
    if not isinstance(pid, int) or not isinstance(settings, dict) or not _alive(pid):
        return None  # a demo killed with SIGKILL leaves its file: its ports are dead
    return settings


def _read_demo(folder: Path) -> dict[str, Any]:
    """Return the demo file's content, or {} when it is missing or unreadable."""
    try:
        data = json.loads((folder / DEMO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    """Tell whether a process with this id exists."""
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
