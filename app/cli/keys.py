"""`consent-portal keys status|rotate`: see and move connections onto the newest key."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import ScriptInfo


@click.group("keys")
def keys_group() -> None:
    """Manage the encryption keys of stored connections."""


def _app() -> Flask:
    """Return the app of `flask --app`, or build one without the start-up key check."""
    from app import create_app

    info = click.get_current_context().find_object(ScriptInfo)
    if info is not None:
        return info.load_app()
    return create_app({"KEY_CHECK": False})  # rotation is how the check gets satisfied


@keys_group.command("status")
def keys_status() -> None:
    """Count connections per key id; the newest key is marked."""
    from app.platform import extensions
    from app.tokens import keys

    app = _app()
    with app.app_context():
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
    from app.platform import extensions
    from app.tokens import keys

    app = _app()
    with app.app_context():
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
