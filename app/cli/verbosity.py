"""`consent-portal --verbose`: without it, library log lines stay off the terminal."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.platform import logs

# Every command builds the app, and building it checks the migrations: without this, each
# command's own answer comes after a screenful of Alembic's and SQLAlchemy's INFO lines.
LIBRARIES = ("alembic", "sqlalchemy", "flask_migrate")


class QuietLibraries(logging.Filter):
    """Drop the libraries' records below WARNING; pass every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep warnings and errors from anyone, and everything from the portal itself."""
        if record.levelno >= logging.WARNING:
            return True
        return not any(record.name == n or record.name.startswith(f"{n}.") for n in LIBRARIES)


def quiet_libraries() -> Callable[[], None]:
    """Filter the portal's log handler (not the loggers: files at DEBUG keep all); return undo."""
    logs.install()  # before the app exists, so that its first migration lines are filtered too
    handlers = [h for h in logging.getLogger().handlers if getattr(h, logs.MARKER, False)]
    quiet = QuietLibraries()
    for handler in handlers:
        handler.addFilter(quiet)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(quiet)

    return undo
