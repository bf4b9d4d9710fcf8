"""`consent-portal keys status | rotate`: see and move connections onto the newest key."""

from __future__ import annotations

import click

from app.cli import portal
from app.platform import extensions
from app.tokens import keys

# Rotation is how the start-up key check gets satisfied; neither command signs anyone in.
NO_KEY_CHECK = {"KEY_CHECK": False, "IDENTITY_CHECK": False}


@click.group("keys")
def keys_group() -> None:
    """Manage the encryption keys of stored connections."""


@keys_group.command("status")
def keys_status() -> None:
    """Count connections per key id; the newest key is marked."""
    with portal.app_context(**NO_KEY_CHECK):
        vault = extensions.vault()
        counts = keys.status(extensions.db.engine)
        missing = keys.unknown(extensions.db.engine, vault)
    for key_id in dict.fromkeys([*vault.key_ids, *counts]):
        mark = " (newest)" if key_id == vault.current_kid else ""
        mark += " (MISSING from PORTAL_ENCRYPTION_KEYS)" if key_id in missing else ""
        click.echo(f"{key_id:<32} {counts.get(key_id, 0):>10}{mark}")
    if missing:
        raise SystemExit(1)


@keys_group.command("rotate")
@click.option("--batch-size", default=500, show_default=True, help="Rows read per batch.")
def keys_rotate(batch_size: int) -> None:
    """Re-seal every connection under the newest key while the portal serves (resumable)."""
    with portal.app_context(**NO_KEY_CHECK):
        engine, vault = extensions.db.engine, extensions.vault()
        total = keys.pending(engine, vault)
        click.echo(f"{total} connection(s) to re-seal under key {vault.current_kid!r}")
        with click.progressbar(length=total, label="Rotating") as bar:
            result = keys.rotate(engine, vault, batch=batch_size, progress=bar.update)
    click.echo(
        f"rotated {result.rotated}, skipped {result.skipped} (written meanwhile), "
        f"failed {result.failed}"
    )
    left = keys.status(engine)
    click.echo("now: " + ", ".join(f"{k}={n}" for k, n in sorted(left.items())))
    if result.failed:
        click.echo("Some rows use a key this instance does not have; see `keys status`.", err=True)
        raise SystemExit(1)
