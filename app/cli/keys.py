"""`consent-portal keys status | rotate`: see and move connections onto the newest key."""

from __future__ import annotations

import click

from app.cli import portal
from app.platform import extensions
from app.tokens import keys
from app.tokens.vault import Vault

# Rotation is how the start-up key check gets satisfied; neither command signs anyone in.
NO_KEY_CHECK = {"KEY_CHECK": False, "IDENTITY_CHECK": False}


@click.group("keys")
def keys_group() -> None:
    """Manage the encryption keys of stored connections."""


@keys_group.command("status")
def keys_status() -> None:
    """Count sealed connections per key id; exit 1 if a key id is missing from the keys."""
    with portal.app_context(**NO_KEY_CHECK):
        vault = extensions.vault()
        counts = keys.status(extensions.db.engine)
        missing = keys.unknown(extensions.db.engine, vault)
        erased = keys.erased(extensions.db.engine)
    _print_table(vault, counts, missing)
    if erased:
        click.echo(f"{erased} revoked connection(s) hold no tokens and are under no key.")
    if missing:
        click.echo(
            f"Missing from PORTAL_ENCRYPTION_KEYS: {', '.join(missing)}. Those connections "
            "cannot be opened: add the key(s) back.",
            err=True,
        )
        raise SystemExit(1)
    click.echo("No key id is missing from PORTAL_ENCRYPTION_KEYS.")


def _print_table(vault: Vault, counts: dict[str, int], missing: list[str]) -> None:
    """Print one line per key id, configured or used: its rows and its state."""
    click.echo(f"{'KEY ID':<32} {'ROWS':>10}  STATE")
    for key_id in dict.fromkeys([*vault.key_ids, *counts]):
        rows = counts.get(key_id, 0)
        click.echo(f"{key_id:<32} {rows:>10}  {_state(key_id, rows, vault, missing)}")


def _state(key_id: str, rows: int, vault: Vault, missing: list[str]) -> str:
    """Say what the operator may do about a key id."""
    if key_id in missing:
        return "MISSING from PORTAL_ENCRYPTION_KEYS"
    if key_id == vault.current_kid:
        return "newest"
    return "older: run keys rotate" if rows else "older, unused: can be removed"


@keys_group.command("rotate")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Rows read per batch.",
)
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
