"""Key rotation (C39), the start-up key check, and certificate credentials at the emulator."""

from __future__ import annotations

import base64
import datetime
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy import update

from app import create_app
from app.errors import ConfigError
from app.models import Connection
from app.platform import extensions
from app.tokens import keys
from app.tokens.vault import Vault
from entra_emulator import Emulator
from tests.signins import connect_account


def row(portal: Flask, connection_id: str) -> Connection:
    """Return a fresh copy of a connection row."""
    with portal.app_context(), extensions.session_factory() as db:
        found = db.get(Connection, connection_id)
        assert found is not None
        return found


def new_key() -> str:
    """Return a fresh base64 key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def bearer(code: str) -> dict[str, str]:
    """Return the Authorization header for a code."""
    return {"Authorization": f"Bearer {code}"}


@pytest.fixture
def old_and_new(
    make_portal: Callable[..., Flask], entra: Emulator, tmp_path: Path
) -> tuple[Flask, Flask, str]:
    """Return a portal on key k1 with two connections, the same portal on k2,k1, and a code."""
    hash_key = new_key()
    k1 = f"k1:{new_key()}"
    database = f"sqlite:///{tmp_path / 'keys.db'}"
    old = make_portal(DATABASE_URL=database, ENCRYPTION_KEYS=k1, HASH_KEY=hash_key)
    _, code = connect_account(old, entra, "onedrive", "user@fabrikam.test")
    connect_account(old, entra, "outlook", "user@fabrikam.test")
    new = make_portal(
        DATABASE_URL=database, ENCRYPTION_KEYS=f"k2:{new_key()},{k1}", HASH_KEY=hash_key
    )
    assert code is not None
    return old, new, code


def engine_and_vault(portal: Flask) -> tuple[Engine, Vault]:
    """Return the portal's engine and vault."""
    with portal.app_context():
        return extensions.db.engine, extensions.vault()


def test_rotate_moves_every_row_to_the_newest_key(old_and_new: Any) -> None:
    _old, new, code = old_and_new
    engine, vault = engine_and_vault(new)
    assert keys.status(engine) == {"k1": 2}
    assert keys.pending(engine, vault) == 2
    result = keys.rotate(engine, vault)
    assert (result.rotated, result.skipped, result.failed) == (2, 0, 0)
    assert keys.status(engine) == {"k2": 2}
    assert keys.rotate(engine, vault).rotated == 0  # idempotent
    answer = new.test_client().post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 200
    # the old key can now be retired: an app with k2 only serves the connection
    k2_only = new.config["ENCRYPTION_KEYS"].split(",")[0]
    assert keys.unknown(engine, type(vault).from_config(k2_only, new.config["HASH_KEY"])) == []


def test_rotate_never_overwrites_a_concurrent_refresh(old_and_new: Any) -> None:
    _old, new, _code = old_and_new
    engine, vault = engine_and_vault(new)
    seen: list[int] = []

    def refresh_meanwhile(count: int) -> None:
        seen.append(count)

    # A refresh that stored a new version between the rotation's read and write wins.
    first = Connection.__table__
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(first.select().order_by(first.c.id)).all()]
    original_open = vault.open

    def open_then_race(connection_id: str, key_id: str, blob: bytes) -> bytes:
        plaintext = original_open(connection_id, key_id, blob)
        if connection_id == ids[0]:
            with engine.begin() as conn:  # what _store_refreshed does, under the old key here
                conn.execute(
                    update(Connection)
                    .where(Connection.id == connection_id)
                    .values(cache_version=Connection.cache_version + 1)
                )
        return plaintext

    vault.open = open_then_race  # type: ignore[method-assign]
    result = keys.rotate(engine, vault, progress=refresh_meanwhile)
    vault.open = original_open  # type: ignore[method-assign]
    assert (result.rotated, result.skipped) == (1, 1)
    assert keys.status(engine) == {"k1": 1, "k2": 1}
    assert keys.rotate(engine, vault).rotated == 1  # the next run picks it up
    assert keys.status(engine) == {"k2": 2}


def test_an_interrupted_rotation_resumes(old_and_new: Any) -> None:
    _old, new, code = old_and_new
    engine, vault = engine_and_vault(new)

    def crash(_count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys.rotate(engine, vault, batch=1, progress=crash)
    assert keys.status(engine) == {"k1": 1, "k2": 1}
    assert keys.rotate(engine, vault, batch=1).rotated == 1
    assert keys.status(engine) == {"k2": 2}
    assert new.test_client().post("/api/v1/token", headers=bearer(code)).status_code == 200


def test_cli_status_and_rotate(old_and_new: Any) -> None:
    from app.cli.keys import keys_group

    _old, new, _code = old_and_new
    runner = new.test_cli_runner()
    status = runner.invoke(keys_group, ["status"])
    assert status.exit_code == 0, status.output
    assert re.search(r"^k2 +0 +newest$", status.output, re.MULTILINE), status.output
    assert re.search(r"^k1 +2 +older: run keys rotate$", status.output, re.MULTILINE)
    rotated = runner.invoke(keys_group, ["rotate", "--batch-size", "1"])
    assert rotated.exit_code == 0, rotated.output
    assert "rotated 2" in rotated.output


def test_production_refuses_a_row_under_a_missing_key(
    old_and_new: Any, entra: Emulator, tmp_path: Path
) -> None:
    _old, new, _code = old_and_new
    registered = entra.control(
        "POST", "/_emulator/apps", json={"redirect_uris": ["http://127.0.0.1/auth/callback"]}
    ).json()
    settings = dict(entra.portal_settings()) | {
        "PRODUCTION": True,
        "INSTANCE_PATH": str(tmp_path / "prod"),
        "DATABASE_URL": new.config["DATABASE_URL"],
        "HASH_KEY": new.config["HASH_KEY"],
        "CLIENT_ID": registered["client_id"],
        "CLIENT_SECRET": registered["client_secret"],
        "SECRET_KEY": secrets.token_urlsafe(40),
    }
    k2_only = new.config["ENCRYPTION_KEYS"].split(",")[0]
    with pytest.raises(ConfigError, match="k1"):
        create_app(settings | {"ENCRYPTION_KEYS": k2_only})
    engine, vault = engine_and_vault(new)
    keys.rotate(engine, vault)
    portal = create_app(settings | {"ENCRYPTION_KEYS": k2_only})  # after rotation it starts
    with portal.app_context():
        extensions.db.engine.dispose()


def self_signed(folder: Path) -> tuple[Path, Path, str]:
    """Write a self-signed certificate and its key; return their paths and the PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = folder / "portal.crt", folder / "portal.key"
    cert_path.write_text(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path, pem


def test_certificate_credential_signs_in_and_refreshes(
    make_portal: Callable[..., Flask], entra: Emulator, tmp_path: Path
) -> None:
    cert_path, key_path, pem = self_signed(tmp_path)
    registered = entra.control(
        "POST",
        "/_emulator/apps",
        json={
            "redirect_uris": ["http://127.0.0.1/auth/callback"],
            "multi_tenant": True,
            "certificates": [pem],
        },
    ).json()
    portal = make_portal(
        CLIENT_ID=registered["client_id"],
        CLIENT_SECRET="",
        CLIENT_CERTIFICATE=str(cert_path),
        CLIENT_CERTIFICATE_KEY=str(key_path),
    )
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    connection_id, code = connect_account(portal, entra, "onedrive", "user@fabrikam.test")
    assert code is not None
    before = row(portal, connection_id).cache_version
    answer = portal.test_client().post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 200, answer.get_json()
    assert row(portal, connection_id).cache_version == before + 1
    refreshes = entra.request_log(endpoint="token", grant_type="refresh_token")
    assert [r["client_id"] for r in refreshes] == [registered["client_id"]]
    assert all(r["status"] == 200 for r in entra.request_log(endpoint="token"))
