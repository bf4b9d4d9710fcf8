"""Read the [data] table of a world file: lists, files, table rows, blobs and their sizes."""

from __future__ import annotations

from typing import Any

from entra_emulator.dataset import COLUMN_TYPES
from entra_emulator.dataset import Column
from entra_emulator.dataset import Data
from entra_emulator.dataset import EntitySet
from entra_emulator.dataset import FileEntry
from entra_emulator.dataset import ItemList
from entra_emulator.toml_fields import get
from entra_emulator.toml_fields import strings
from entra_emulator.world import ConfigError

# Items per page when the client names no $top / maxresults, and the most it may ask for.
PAGE_SIZES = {
    "messages": 10, "messages_max": 1000,  # user-list-messages
    "mail_folders": 10, "mail_folders_max": 1000,  # inferred: Outlook's message defaults
    "list_items": 200, "list_items_max": 5000,  # inferred: Q&A reports, list view threshold
    "lists": 200, "sites": 200,  # inferred
    "drive_children": 200, "drive_children_max": 1000,  # OneDrive list-children; max inferred
    "dataverse": 5000,  # page-results: odata.maxpagesize up to 5,000
    "blobs": 5000, "containers": 5000,  # enumerating-blob-resources: maxresults up to 5,000
}  # fmt: skip
MAX_BYTES = 1 << 40  # a generated file may be large, not absurd


def build_data(data: dict[str, Any]) -> Data:
    """Return the Data described by the world file's [data] table and storage accounts."""
    table = get(data, "data", dict, "config", {})
    out = Data(
        big_file_bytes=size(table, "big_file_bytes", "data", 4 * 1024 * 1024),
        messages=size(table, "messages", "data", 300),
        content_redirect=get(table, "content_redirect", bool, "data", False),
        page_sizes=page_sizes(get(table, "page_sizes", dict, "data", {}), "data.page_sizes"),
    )
    for i, item in enumerate(get(table, "lists", list, "data", [])):
        out.lists.append(_list(_table(item, f"data.lists[{i}]"), f"data.lists[{i}]"))
    for i, item in enumerate(get(table, "entity_sets", list, "data", [])):
        where = f"data.entity_sets[{i}]"
        out.entity_sets.append(_entity_set(_table(item, where), where))
    out.drive = files(table, "drive", "data")
    out.library = files(table, "library", "data")
    for i, account in enumerate(get(data, "storage_accounts", list, "config", [])):
        _blobs(out, _table(account, f"storage_accounts[{i}]"), f"storage_accounts[{i}]")
    return out


def size(table: dict[str, Any], key: str, where: str, default: int) -> int:
    """Return a non-negative count or byte size."""
    value = get(table, key, int, where, default)
    if not 0 <= value <= MAX_BYTES:
        raise ConfigError(f"{where}.{key}: expected 0 to {MAX_BYTES}, got {value}")
    return value


def page_sizes(table: dict[str, Any], where: str) -> dict[str, int]:
    """Return the page sizes with overrides checked against the known names."""
    out = dict(PAGE_SIZES)
    for key in table:
        if key not in PAGE_SIZES:
            raise ConfigError(f"{where}.{key}: unknown page size (one of {', '.join(PAGE_SIZES)})")
        out[key] = get(table, key, int, where)
        if out[key] < 1:
            raise ConfigError(f"{where}.{key}: expected at least 1")
    return out


def _table(item: Any, where: str) -> dict[str, Any]:
    """Return item if it is a TOML table."""
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table")
    return item


def columns(table: dict[str, Any], where: str) -> list[Column]:
    """Return the typed columns of a list or an entity set."""
    out = []
    for i, raw in enumerate(get(table, "columns", list, where, [])):
        at = f"{where}.columns[{i}]"
        raw = _table(raw, at)
        kind = get(raw, "type", str, at, "text")
        if kind not in COLUMN_TYPES:
            raise ConfigError(f"{at}.type: expected one of {', '.join(COLUMN_TYPES)}")
        choices = tuple(strings(raw, "choices", at))
        if kind == "choice" and not choices:
            raise ConfigError(f"{at}.choices: a choice column needs choices")
        out.append(
            Column(get(raw, "name", str, at), kind, get(raw, "prefix", str, at, ""), choices)
        )
    return out


def _list(table: dict[str, Any], where: str) -> ItemList:
    """Validate one [[data.lists]] entry."""
    return ItemList(
        name=get(table, "name", str, where),
        items=size(table, "items", where, 0),
        columns=columns(table, where),
        title_prefix=get(table, "title_prefix", str, where, ""),
    )


def _entity_set(table: dict[str, Any], where: str) -> EntitySet:
    """Validate one [[data.entity_sets]] entry."""
    return EntitySet(
        name=get(table, "name", str, where),
        entity=get(table, "entity", str, where),
        rows=size(table, "rows", where, 0),
        columns=columns(table, where),
    )


def files(table: dict[str, Any], key: str, where: str) -> list[FileEntry]:
    """Return file entries: {path, size} or {path, big = true}; a path ending in / is a folder."""
    items = get(table, key, list, where, [])
    return [
        _file(_table(raw, f"{where}.{key}[{i}]"), f"{where}.{key}[{i}]")
        for i, raw in enumerate(items)
    ]


def _file(raw: dict[str, Any], at: str) -> FileEntry:
    """Validate one file entry (its path under "path", or "name" for a blob)."""
    key = "path" if "path" in raw else "name"
    path = get(raw, key, str, at)
    if not path.strip("/") or "//" in path or "\\" in path or ":" in path:
        raise ConfigError(f"{at}.{key}: expected a relative path like 'Folder/file.txt'")
    if get(raw, "big", bool, at, False):
        return FileEntry(path.lstrip("/"), None)
    return FileEntry(path.lstrip("/"), 0 if path.endswith("/") else size(raw, "size", at, 0))


def _blobs(out: Data, account: dict[str, Any], where: str) -> None:
    """Add a storage account's blobs, grouped by container."""
    name = get(account, "name", str, where)
    containers = strings(account, "containers", where)
    for i, raw in enumerate(get(account, "blobs", list, where, [])):
        at = f"{where}.blobs[{i}]"
        container = get(_table(raw, at), "container", str, at)
        if container not in containers:
            raise ConfigError(f"{at}.container: {container!r} is not in {where}.containers")
        out.blobs.setdefault(f"{name}/{container}", []).append(_file(raw, at))
    generated = get(account, "generated_blobs", dict, where, {})
    for container in generated:
        if container not in containers:
            raise ConfigError(f"{where}.generated_blobs.{container}: unknown container")
        out.generated_blobs[f"{name}/{container}"] = size(generated, container, where, 0)
