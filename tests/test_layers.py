"""The domain packages import no Flask: each module, alone, in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from importlib import import_module

import pytest

DOMAIN = ("identity", "tokens", "consent", "diagnosis", "helpdesk", "notify", "data")
BASE = ("app.connectors", "app.models", "app.errors", "app.version")
CHECK = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print(sorted(m for m in ('flask', 'werkzeug') if m in sys.modules))"
)


def domain_modules() -> list[str]:
    """Return every module of the domain packages, and the base modules they stand on."""
    found = list(BASE)
    for name in DOMAIN:
        package = import_module(f"app.{name}")
        found.append(package.__name__)
        found += [m.name for m in pkgutil.iter_modules(package.__path__, f"{package.__name__}.")]
    return found


def test_the_domain_is_listed_whole() -> None:
    modules = domain_modules()
    assert "app.tokens.vault" in modules and "app.helpdesk.keepalive" in modules
    assert len(modules) > 30


@pytest.mark.parametrize("module", domain_modules())
def test_a_domain_module_loads_no_flask(module: str) -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", CHECK, module], capture_output=True, text=True, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]", f"{module} pulls in {loaded.stdout.strip()}"
