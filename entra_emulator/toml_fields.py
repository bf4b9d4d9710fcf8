"""Typed reads from parsed TOML that name the offending key in every error."""

from __future__ import annotations

from typing import Any
from typing import TypeVar

from entra_emulator.world import ConfigError

T = TypeVar("T")
_MISSING: Any = object()


def get(table: dict[str, Any], key: str, kind: type[T], where: str, default: Any = _MISSING) -> T:
    """Return table[key] checked against kind, or the default when it is absent."""
    if key not in table:
        if default is _MISSING:
            raise ConfigError(f"{where}.{key}: missing")
        return default
    value = table[key]
    if kind is list and not isinstance(value, list):
        raise ConfigError(f"{where}.{key}: expected a list")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def strings(table: dict[str, Any], key: str, where: str) -> list[str]:
    """Return an optional list of strings."""
    values = get(table, key, list, where, [])
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{key}[{i}]: expected a string")
    return list(values)


def tables(data: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """Return the [[key]] array of tables with the path of each."""
    items = get(data, key, list, "config", [])
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{key}[{i}]: expected a table")
        out.append((f"{key}[{i}]", item))
    return out
