"""The staff settings: PORTAL_ADMIN_USERS and PORTAL_HELPDESK_USERS as tenant-id/object-id."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.errors import ConfigError
from app.identity.roles import MSA_TENANT

SETTINGS = ("ADMIN_USERS", "HELPDESK_USERS")
# Set by `consent-portal demo` only: the demo accounts' pairs, shown when a setting is refused.
DEMO_IDS_KEY = "DEMO_ACCOUNT_IDS"
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PAIR = re.compile(f"{_GUID}/{_GUID}")
EXAMPLE = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c/0d4e8f2a-6b1c-4d3e-9f7a-2c5b8e1d4f6a"
HOW_TO_FIND = (
    "To find a person's pair, have them sign in to the portal and open /account (Your account "
    "shows it, ready to copy), or in the Microsoft Entra admin center read the Tenant ID on the "
    "Overview page and the Object ID on the person's page under Users."
)


def check(config: dict[str, Any]) -> None:
    """Keep the staff settings as lower-case pairs; refuse a username or a personal account."""
    for key in SETTINGS:
        pairs = []
        for entry in config.get(key) or ():
            pair = str(entry).strip().lower()
            if not PAIR.fullmatch(pair):
                raise ConfigError(refusal(key, str(entry), config.get(DEMO_IDS_KEY) or {}))
            if pair.startswith(f"{MSA_TENANT}/"):
                raise ConfigError(
                    f"PORTAL_{key} lists {pair}, a personal Microsoft account: personal accounts "
                    "have no organization and are never portal staff"
                )
            pairs.append(pair)
        config[key] = pairs


def refusal(key: str, entry: str, demo_ids: Mapping[str, str]) -> str:
    """Return the start-up message for a staff entry that is not a tenant-id/object-id pair."""
    shown = entry if len(entry) <= 80 else entry[:80] + "..."
    what = "a username" if "@" in entry else "not a tenant-id/object-id pair"
    lines = [
        f"PORTAL_{key} lists {shown!r}, {what}. Portal staff are named by tenant id and object "
        f"id, comma-separated, such as PORTAL_{key}={EXAMPLE}: a username can be renamed, and a "
        "guest or a personal account can carry anyone's, so it never decides who is staff. "
        + HOW_TO_FIND
    ]
    if demo_ids:
        lines.append("The demo accounts' pairs:")
        lines += [f"  {name:<24} {pair}" for name, pair in sorted(demo_ids.items())]
    return "\n".join(lines)
