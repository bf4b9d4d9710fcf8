"""Many connections from one real one: the rows a load needs, each with its own code."""

from __future__ import annotations

import secrets
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
