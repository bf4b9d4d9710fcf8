"""Logs: one JSON line per event, with the request id, and never a secret (principle 10).

Levels: PORTAL_LOG_LEVEL (default INFO) for everything, PORTAL_LOG_LEVELS to raise or lower
single modules, e.g. PORTAL_LOG_LEVELS="app.tokens=DEBUG,msal=INFO,urllib3=WARNING".
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import TextIO

from flask import Flask
from flask import Response
from flask import g
from flask import has_request_context
from flask import request

from app.errors import ConfigError

ACCESS = logging.getLogger("app.access")
MARKER = "_ccp_json_handler"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
# Chatty libraries stay at WARNING unless PORTAL_LOG_LEVELS asks for more.
QUIET = {"urllib3": "WARNING", "msal": "WARNING", "werkzeug": "WARNING"}
REDACTED = "[redacted]"
SECRET_PATH_PARTS = ("<token>", "<path:token>")

# What a secret looks like in a log message: a JWT, a connection code, an Authorization value,
# a name=value or "name": "value" pair with a secret's name, a long opaque token, a query string.
SECRET_NAMES = (
    r"code|state|nonce|session_state|client_info|code_verifier|code_challenge|"
    r"access_token|refresh_token|id_token|client_secret|client_assertion|assertion|"
    r"password|secret|token|api_key|key|authorization|cookie|session|sid"
)
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Binary values (session blobs, sealed caches in DEBUG SQL output) are never worth logging.
    (re.compile(r"\bb'(?:[^'\\]|\\.)*'" + r'|\bb"(?:[^"\\]|\\.)*"'), "b'[redacted]'"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"ccp_[A-Za-z0-9_-]{4,}"), "ccp_" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+"), r"\1 " + REDACTED),
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9_])([\"']?(?:{SECRET_NAMES})[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}}]+"
        ),
        r"\1" + REDACTED,
    ),
    # Callback and authorize URLs: the path stays, the query goes (C40).
    (re.compile(r"(/(?:auth/callback|authorize|adminconsent|oauth2/[\w/.-]*))\?[^\s\"']*"), r"\1"),
    (re.compile(r"[A-Za-z0-9_\-+]{40,}={0,2}"), REDACTED),
)


def redact(text: str) -> str:
    """Return text with anything that looks like a secret replaced."""
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Merge a record's args into its message, then redact message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the event
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extra fields."""

    FIELDS = ("method", "path", "route", "status", "ms", "remote", "event")

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id()
        if request_id:
            line["request_id"] = request_id
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:  # extra fields pass no filter: redact them here
                line[name] = redact(value) if isinstance(value, str) else value
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str)


def _request_id() -> str | None:
    """Return the current request's id, if there is one."""
    if has_request_context():
        return g.get("request_id")
    return None


class _StderrHandler(logging.StreamHandler):
    """Write to whatever sys.stderr is now (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        """Return the current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignore: the stream is always the current sys.stderr."""


def handler() -> logging.Handler:
    """Return a handler that writes redacted JSON lines to standard error."""
    made = _StderrHandler()
    made.addFilter(RedactSecrets())
    made.setFormatter(JsonFormatter())
    setattr(made, MARKER, True)
    return made


def parse_levels(spec: Any) -> dict[str, str]:
    """Parse "app.tokens=DEBUG,msal=INFO" (or a JSON object) into logger -> level."""
    if not spec:
        return {}
    items = spec.items() if isinstance(spec, Mapping) else _pairs(str(spec))
    levels: dict[str, str] = {}
    for name, level in items:
        level = str(level).strip().upper()
        if level not in LEVELS:
            raise ConfigError(f"PORTAL_LOG_LEVELS: {name!r} has unknown level {level!r}")
        levels[str(name).strip()] = level
    return levels


def _pairs(spec: str) -> list[tuple[str, str]]:
    """Split "a=B,c=D" into pairs."""
    pairs = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, level = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"PORTAL_LOG_LEVELS must look like 'app.tokens=DEBUG', not {part!r}")
        pairs.append((name, level))
    return pairs


def install() -> None:
    """Install the JSON handler on the root logger, once per process."""
    root = logging.getLogger()
    if not any(getattr(h, MARKER, False) for h in root.handlers):
        root.addHandler(handler())


def configure(level: str | None, levels: Mapping[str, str], defaults: bool = True) -> None:
    """Set the root level (INFO unless given) and per-module levels; quiet chatty libraries."""
    install()
    if level is not None or defaults:
        level = str(level or "INFO").upper()
        if level not in LEVELS:
            raise ConfigError(f"PORTAL_LOG_LEVEL must be one of {', '.join(LEVELS)}")
        logging.getLogger().setLevel(level)
    for name, chosen in ((QUIET if defaults else {}) | dict(levels)).items():
        logging.getLogger(name).setLevel(chosen)


def init_app(app: Flask) -> None:
    """Configure logging from PORTAL_LOG_LEVEL / PORTAL_LOG_LEVELS and log one line per request."""
    level = app.config.get("LOG_LEVEL") or None
    # Tests set their own levels (the DEBUG secret scan); only explicit settings apply there.
    configure(level, parse_levels(app.config.get("LOG_LEVELS")), defaults=not app.testing)
    app.before_request(_start_clock)
    app.after_request(_access_line)


def _start_clock() -> None:
    """Remember when the request started."""
    g.started = time.perf_counter()


def _access_line(response: Response) -> Response:
    """Log the request: method, path without its query, route, status and duration."""
    started = g.get("started")
    elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
    rule = request.url_rule
    path = _loggable_path(rule.rule if rule else None)
    ACCESS.info(
        "%s %s %s",
        request.method,
        path,
        response.status_code,
        extra={
            "method": request.method,
            "path": path,  # never the query string: callbacks carry codes and states
            "route": rule.rule if rule else None,
            "status": response.status_code,
            "ms": round(elapsed, 1),
            "remote": request.remote_addr,
        },
    )
    return response


def _loggable_path(rule: str | None) -> str:
    """Return the request path, or the route pattern where the path itself carries a secret."""
    if rule and any(part in rule for part in SECRET_PATH_PARTS):
        return rule  # e.g. /l/<token>: a helpdesk link token in the path
    return request.path
