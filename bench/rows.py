"""Many connections from one real one: the rows a load needs, each with its own code."""

from __future__ import annotations

import secrets
import time
from typing import Any
from typing import cast

import sqlalchemy


def seed(
    engine: sqlalchemy.Engine, vault: Any, template_id: str, count: int, prefix: str
) -> list[str]:
    """Copy one real connection `count` times (each with its own id, code and ciphertext)."""
    from app.models import Connection

    table = cast(sqlalchemy.Table, Connection.__table__)
    with engine.connect() as conn:
        template = dict(
            conn.execute(table.select().where(table.c.id == template_id)).one()._mapping
        )
    plaintext = vault.open(template_id, template["key_id"], bytes(template["sealed_cache"]))
    codes, rows = [], []
    for n in range(count):
        row_id = f"{prefix}-{n:06d}-{secrets.token_hex(4)}"
        code = vault.new_code()
        kid, sealed = vault.seal(row_id, plaintext)
        rows.append(template | {"id": row_id, "code_hash": vault.hash_code(code), "key_id": kid,
                                "sealed_cache": sealed, "tenant_id": f"{prefix}-{n}"})  # fmt: skip
        codes.append(code)
        if len(rows) == 5000:
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    return codes


def seed_refreshable(
    engine: sqlalchemy.Engine, vault: Any, template_id: str, count: int, prefix: str, emulator: Any
) -> list[str]:
    """Copy one real connection `count` times, expired, each with its own refresh token.

    Every copy keeps the template's tenant (one tenant's pace) and gets a refresh token the
    in-process emulator knows as the template's (same user, same sign-in), so the request log's
    `refresh_token_fingerprint` tells the copies' refreshes apart. A connection is unique per
    account, tenant and connector, so each copy's cache names its account by a made-up object
    id; MSAL stores the refreshed tokens under the real one, so a copy refreshes once (enough
    for a storm: each copy is called until it has its token once).
    """
    import dataclasses
    import json
    import uuid

    from app.models import Connection

    table = cast(sqlalchemy.Table, Connection.__table__)
    with engine.connect() as conn:
        template = dict(
            conn.execute(table.select().where(table.c.id == template_id)).one()._mapping
        )
    plaintext = vault.open(template_id, template["key_id"], bytes(template["sealed_cache"]))
    cache = json.loads(plaintext)
    old_secret = next(iter(cache["RefreshToken"].values()))["secret"]
    record = emulator.state.refresh_tokens[old_secret]
    uid = template["home_account_id"].split(".", 1)[0]
    for access in cache.get("AccessToken", {}).values():  # expired, whatever the template's
        access["expires_on"] = access["extended_expires_on"] = str(int(time.time()) - 3600)
    blob = json.dumps(cache)
    codes, rows = [], []
    for n in range(count):
        row_id = f"{prefix}-{n:06d}-{secrets.token_hex(4)}"
        secret = "rt" + secrets.token_urlsafe(48)
        with emulator.state.lock:
            emulator.state.refresh_tokens[secret] = dataclasses.replace(record)
        oid = str(uuid.uuid4())
        copied = blob.replace(old_secret, secret).replace(uid, oid)
        code = vault.new_code()
        kid, sealed = vault.seal(row_id, copied.encode())
        home = template["home_account_id"].replace(uid, oid)
        fields = {"id": row_id, "code_hash": vault.hash_code(code), "key_id": kid,
                  "sealed_cache": sealed, "oid": oid, "home_account_id": home}  # fmt: skip
        rows.append(template | fields)
        codes.append(code)
    for start in range(0, len(rows), 5000):
        with engine.begin() as conn:
            conn.execute(table.insert(), rows[start : start + 5000])
    return codes
