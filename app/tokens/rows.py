"""What the token broker reads of a connection, as Core statements built once; the decoy cache."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast

from sqlalchemy import Row
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import select

from app.models import Connection

DECOY_ID = "decoy"  # the associated data of the decoy cache; no connection has this id
DECOY_ACCOUNT = "decoy.decoy"


@dataclass(frozen=True)
class TokenRow:
    """The fields of a connection row the broker works with, read in one go."""

    id: str
    connector: str
    status: str
    home_account_id: str
    authority_tenant: str
    scopes: tuple[str, ...]
    username: str
    tenant_id: str
    key_id: str
    sealed_cache: bytes
    cache_version: int
    last_used_at: datetime | None

    @classmethod
    def of(cls, c: Connection | Row[Any]) -> TokenRow:
        """Copy the fields of a Connection, or of a row of BY_CODE or BY_ID."""
        return cls(
            c.id, c.connector, c.status, c.home_account_id, c.authority_tenant,
            tuple(c.scopes.split()), c.username, c.tenant_id, c.key_id, bytes(c.sealed_cache),
            c.cache_version, c.last_used_at,
        )  # fmt: skip


# The broker's reads as plain Core statements, built once (its refresh write uses TABLE too):
# loading and tracking ORM objects cost a third of a cached-token call's CPU.
TABLE = cast(Table, Connection.__table__)
COLUMNS = tuple(TABLE.c[name] for name in TokenRow.__dataclass_fields__)
BY_CODE = select(*COLUMNS).where(TABLE.c.code_hash == bindparam("digest"))
BY_ID = select(*COLUMNS).where(TABLE.c.id == bindparam("id"))


def decoy_cache(client_id: str) -> bytes:
    """Return an MSAL cache shaped and sized like a connection's (one account, AT, RT, ID)."""
    far = str(int(time.time()) + 10 * 365 * 86400)
    entry = {"home_account_id": DECOY_ACCOUNT, "environment": "login.microsoftonline.com",
             "client_id": client_id, "realm": "organizations"}  # fmt: skip
    cache = {
        "Account": {"a": entry | {"authority_type": "MSSTS", "username": "x" * 24}},
        "AccessToken": {"t": entry | {"credential_type": "AccessToken", "secret": "x" * 1800,
                                      "target": "decoy", "cached_at": far, "expires_on": far,
                                      "extended_expires_on": far, "token_type": "Bearer"}},
        "RefreshToken": {"r": entry | {"credential_type": "RefreshToken", "secret": "x" * 1200}},
        "IdToken": {"i": entry | {"credential_type": "IdToken", "secret": "x" * 1100}},
        "AppMetadata": {"m": {"client_id": client_id, "environment": "login.microsoftonline.com"}},
    }  # fmt: skip
    return json.dumps(cache).encode()
