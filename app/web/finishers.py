"""Where a flow goes next, by its purpose: each area names the finishers of its own flows."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from types import ModuleType
from typing import Any
from typing import cast

from flask import Flask
from flask import current_app
from flask.typing import ResponseReturnValue

from app.errors import EntraError
from app.identity.signins import SignIn

KEY = "portal.flow_finishers"
Purpose = Mapping[str, Any]
Finisher = Callable[[SignIn, Purpose], ResponseReturnValue]
Return = Callable[[Mapping[str, str], Purpose], ResponseReturnValue]
Failure = Callable[[EntraError, Purpose], ResponseReturnValue]


@dataclass
class Finishers:
    """What finishes each purpose: after a token (finished), without one (returned), on error."""

    finished: dict[str, Finisher] = field(default_factory=dict)
    returned: dict[str, Return] = field(default_factory=dict)
    failed: Failure | None = None


def collect(app: Flask, areas: Iterable[ModuleType]) -> None:
    """Gather the areas' FINISHERS, RETURNS and FAILURE; a purpose claimed twice is a bug."""
    found = Finishers()
    for area in areas:
        for name, table in (("finished", "FINISHERS"), ("returned", "RETURNS")):
            mine = getattr(area, table, {})
            taken = set(mine) & set(getattr(found, name))
            if taken:
                raise RuntimeError(f"{area.__name__} claims flow purposes {sorted(taken)} again")
            getattr(found, name).update(mine)
        if hasattr(area, "FAILURE"):
            if found.failed is not None:
                raise RuntimeError(f"{area.__name__} claims the flows' failures again")
            found.failed = area.FAILURE
    app.extensions[KEY] = found


def of_app() -> Finishers:
    """Return this app's finishers."""
    return cast(Finishers, current_app.extensions[KEY])
