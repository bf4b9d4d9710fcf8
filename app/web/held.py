"""Values held sealed in the session for one step: a new code until shown, a sign-in to confirm."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import Any

from app.identity.signins import SignIn
from app.platform import extensions

# Keys of live sessions keep their names across module moves.
SWITCH_KEY = "app.held.held"
REVEAL_KEY = "app.held.reveal"
TTL_SECONDS = 600


def hold_sign_in(
    session: MutableMapping[str, Any], result: SignIn, purpose: Mapping[str, Any]
) -> None:
    """Keep the sign-in, encrypted, in the server-side session for one decision."""
    hold_id = secrets.token_hex(16)
    payload = json.dumps({"sign_in": dataclasses.asdict(result), "purpose": dict(purpose)})
    key_id, blob = extensions.vault().seal(f"switch:{hold_id}", payload.encode())
    session[SWITCH_KEY] = {"id": hold_id, "kid": key_id, "blob": blob.hex(), "at": time.time()}


def take_sign_in(session: MutableMapping[str, Any]) -> tuple[SignIn, dict[str, Any]] | None:
    """Return and forget the held sign-in, or None if there is none or it is stale."""
    held = session.pop(SWITCH_KEY, None)
    if not held or time.time() - held["at"] > TTL_SECONDS:
        return None
    plain = extensions.vault().open(
        f"switch:{held['id']}", held["kid"], bytes.fromhex(held["blob"])
    )
    data = json.loads(plain)
    fields = {f.name for f in dataclasses.fields(SignIn)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data["sign_in"].items() if k in fields
    }
    return SignIn(**values), data["purpose"]


def keep_for_reveal(
    session: MutableMapping[str, Any], key_id: str, value: str, *, kind: str = "code"
) -> None:
    """Hold a secret shown once (a new connection code, a new link's URL), sealed, until shown.

    Each kind has its own slot, so a link made by the helpdesk never displaces a code.
    """
    slot, context = _reveal_slot(kind, key_id)
    vault_key, blob = extensions.vault().seal(context, value.encode())
    session[slot] = {"id": key_id, "kid": vault_key, "blob": blob.hex()}


def reveal(session: MutableMapping[str, Any], key_id: str, *, kind: str = "code") -> str | None:
    """Return and forget the held value of this kind for this id, or None."""
    slot, context = _reveal_slot(kind, key_id)
    held = session.pop(slot, None)
    if not held or held.get("id") != key_id:
        return None
    return extensions.vault().open(context, held["kid"], bytes.fromhex(held["blob"])).decode()


def _reveal_slot(kind: str, key_id: str) -> tuple[str, str]:
    """Return the session key and the sealing context of a held value (codes keep the old ones)."""
    if kind == "code":
        return REVEAL_KEY, f"reveal:{key_id}"
    return f"{REVEAL_KEY}.{kind}", f"reveal:{kind}:{key_id}"
