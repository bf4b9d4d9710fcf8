"""Encryption-key operations: counts per key id, the start-up check, and online rotation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from app.errors import ConfigError
from app.errors import ConnectionDamaged
from app.errors import UnknownKey
from app.models import Connection
from app.tokens.vault import Vault

BATCH = 500
# Revoking erases a row's cache and its key id: such a row is sealed under no key at all.
SEALED = Connection.key_id != ""


@dataclass
class Rotation:
    """What a rotation run did."""

    rotated: int = 0
    skipped: int = 0  # a refresh or reconnect wrote the row meanwhile (already on the new key)
    failed: int = 0  # sealed under a key we do not have, or damaged: left untouched


def status(engine: Engine) -> dict[str, int]:
    """Return how many connections are sealed under each key id (revoked rows hold none)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Connection.key_id, func.count()).where(SEALED).group_by(Connection.key_id)
        )
        return {str(key_id): int(count) for key_id, count in rows}


def unknown(engine: Engine, vault: Vault) -> list[str]:
    """Return the key ids used by some row that this vault cannot open."""
    with engine.connect() as connection:
        used = connection.execute(select(Connection.key_id).where(SEALED).distinct()).scalars()
        return sorted(str(k) for k in used if k not in vault.key_ids)


def erased(engine: Engine) -> int:
    """Return how many connections hold no sealed cache (revoked: their tokens were erased)."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(~SEALED)).scalar_one())


def check(engine: Engine, vault: Vault) -> None:
    """Refuse to start when a row is sealed under a key this instance does not have (C39)."""
    missing = unknown(engine, vault)
    if missing:
        raise ConfigError(
            "refusing to start: connections are sealed under key id(s) "
            f"{', '.join(missing)} missing from PORTAL_ENCRYPTION_KEYS"
        )


def pending(engine: Engine, vault: Vault) -> int:
    """Return how many rows are not yet under the newest key."""
    with engine.connect() as connection:
        query = select(func.count()).where(SEALED, Connection.key_id != vault.current_kid)
        return int(connection.execute(query).scalar_one())


def rotate(
    engine: Engine,
    vault: Vault,
    batch: int = BATCH,
    progress: Callable[[int], None] = lambda _n: None,
) -> Rotation:
    """Re-seal every row under the newest key, one short transaction per row.

    Resumable and idempotent: only rows whose key id is not the newest are read, in id order.
    Each write is a compare-and-swap on the version read, and it leaves the version alone, so a
    refresh running at the same time always wins: its store succeeds and its row (sealed under
    the newest key already) is skipped here.
    """
    result = Rotation()
    after = ""
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    Connection.id, Connection.key_id, Connection.sealed_cache,
                    Connection.cache_version,
                )
                .where(SEALED, Connection.key_id != vault.current_kid, Connection.id > after)
                .order_by(Connection.id)
                .limit(batch)
            ).all()  # fmt: skip
        if not rows:
            return result
        for connection_id, key_id, sealed, version in rows:
            after = connection_id
            try:
                plaintext = vault.open(connection_id, key_id, bytes(sealed))
            except (UnknownKey, ConnectionDamaged):
                result.failed += 1
                continue
            new_kid, new_sealed = vault.seal(connection_id, plaintext)
            with engine.begin() as connection:
                written = connection.execute(
                    update(Connection)
                    .where(
                        Connection.id == connection_id,
                        Connection.cache_version == version,
                        Connection.key_id == key_id,
                    )
                    .values(key_id=new_kid, sealed_cache=new_sealed)
                ).rowcount
            if written:
                result.rotated += 1
            else:
                result.skipped += 1
        progress(len(rows))
