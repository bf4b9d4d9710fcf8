"""The control plane's data and API-fault calls: sizes of the served data, throttling, 401s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.typing import ResponseReturnValue

from entra_emulator.config_data import MAX_BYTES
from entra_emulator.config_data import PAGE_SIZES
from entra_emulator.control import ControlError
from entra_emulator.control import json_body
from entra_emulator.dataset import Data
from entra_emulator.faults import FAULTABLE
from entra_emulator.runtime import current
from entra_emulator.state import Fault


def _count(value: Any, key: str, low: int = 0) -> int:
    """Return value if it is a whole number from low to MAX_BYTES."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_BYTES:
        raise ControlError(f"{key}: expected a whole number from {low} to {MAX_BYTES}")
    return value


def _sizes(value: Any, key: str) -> dict[str, int]:
    """Return a {name: count} object."""
    if not isinstance(value, dict):
        raise ControlError(f"{key}: expected an object of name: count")
    return {str(name): _count(n, f"{key}.{name}") for name, n in value.items()}


def _describe(data: Data) -> dict[str, Any]:
    """Return the data knobs as the control plane shows and takes them."""
    return {
        "big_file_bytes": data.big_file_bytes,
        "messages": data.messages,
        "list_items": {x.name: x.items for x in data.lists},
        "rows": {e.name: e.rows for e in data.entity_sets},
        "generated_blobs": dict(data.generated_blobs),
        "page_sizes": dict(data.page_sizes),
        "content_redirect": data.content_redirect,
    }


def get_data() -> ResponseReturnValue:
    """Return the sizes of the data the resource APIs serve."""
    return _describe(current().state.world.data)


def post_data() -> ResponseReturnValue:
    """Change sizes (big file, messages, list items, rows, generated blobs, page sizes)."""
    body, data = json_body(), current().state.world.data
    for key in body:
        if key not in _describe(data):
            raise ControlError(f"{key}: unknown data setting")
    if "big_file_bytes" in body:
        data.big_file_bytes = _count(body["big_file_bytes"], "big_file_bytes")
    if "messages" in body:
        data.messages = _count(body["messages"], "messages")
    if "content_redirect" in body:
        if not isinstance(body["content_redirect"], bool):
            raise ControlError("content_redirect: expected true or false")
        data.content_redirect = body["content_redirect"]
    _list_items(data, body.get("list_items"))
    for name, rows in _sizes(body.get("rows", {}), "rows").items():
        table = data.entity_set(name)
        if table is None:
            raise ControlError(f"rows.{name}: unknown entity set")
        table.rows = rows
    for name, count in _sizes(body.get("generated_blobs", {}), "generated_blobs").items():
        data.generated_blobs[_container(name)] = count
    for name, size in _sizes(body.get("page_sizes", {}), "page_sizes").items():
        if name not in PAGE_SIZES:
            raise ControlError(f"page_sizes.{name}: unknown page size")
        data.page_sizes[name] = _count(size, f"page_sizes.{name}", low=1)
    return _describe(data)


def _list_items(data: Data, value: Any) -> None:
    """Set the item count of every list (a number) or of named lists ({name: count})."""
    if value is None:
        return
    if not isinstance(value, dict):
        count = _count(value, "list_items")
        value = {x.name: count for x in data.lists}
    for name, count in _sizes(value, "list_items").items():
        item_list = data.list_named(name)
        if item_list is None:
            raise ControlError(f"list_items.{name}: unknown list")
        item_list.items = count


def _container(name: str) -> str:
    """Return "account/container" for a container named alone or with its account."""
    accounts = current().state.world.storage_accounts
    if "/" in name:
        account, _, container = name.partition("/")
        if container in accounts.get(account, []):
            return name
    for account, containers in accounts.items():
        if name in containers:
            return f"{account}/{name}"
    raise ControlError(f"generated_blobs.{name}: unknown container")


def post_faults() -> ResponseReturnValue:
    """Arm a fault for the next count requests to an endpoint (all of them without count)."""
    body = json_body()
    if body.get("endpoint") not in FAULTABLE:
        raise ControlError(f"endpoint: expected one of {', '.join(FAULTABLE)}")
    status, count, prefix = body.get("status"), body.get("count"), body.get("path_prefix")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ControlError("status: expected an HTTP error status from 400 to 599")
    if count is not None:
        _count(count, "count", low=1)
    if prefix is not None and (not isinstance(prefix, str) or not prefix.startswith("/")):
        raise ControlError("path_prefix: expected a path starting with /")
    fault = Fault(
        endpoint=body["endpoint"],
        status=status,
        latency_ms=int(body.get("latency_ms", 0)),
        retry_after=body.get("retry_after"),
        drop=bool(body.get("drop", False)),
        remaining=count,
        path_prefix=prefix,
    )
    current().state.faults.append(fault)
    return vars(fault), 201


def delete_faults() -> ResponseReturnValue:
    """Disarm every fault."""
    current().state.faults.clear()
    return {"faults": []}


ROUTES: list[tuple[str, tuple[str, ...], Callable[..., ResponseReturnValue]]] = [
    ("/data", ("GET",), get_data),
    ("/data", ("POST",), post_data),
    ("/faults", ("POST",), post_faults),
    ("/faults", ("DELETE",), delete_faults),
]
