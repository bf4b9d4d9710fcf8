"""Sealing token caches and hashing connection codes (C37-C39)."""

from __future__ import annotations

import base64
import secrets

import pytest

from app.errors import ConfigError
from app.errors import ConnectionDamaged
from app.errors import UnknownKey
from app.tokens.vault import Vault
from app.tokens.vault import parse_keys


def b64(raw: bytes) -> str:
    """Return standard base64 text."""
    return base64.b64encode(raw).decode()


@pytest.fixture
def vault() -> Vault:
    """Return a vault with one key."""
    return Vault({"k1": secrets.token_bytes(32)}, "k1", secrets.token_bytes(32))


def test_seal_open_round_trip(vault: Vault) -> None:
    key_id, blob = vault.seal("conn-a", b'{"RefreshToken": {}}')
    assert key_id == "k1"
    assert b"RefreshToken" not in blob
    assert vault.open("conn-a", key_id, blob) == b'{"RefreshToken": {}}'


def test_every_seal_uses_a_fresh_nonce(vault: Vault) -> None:
    _, first = vault.seal("conn-a", b"same")
    _, second = vault.seal("conn-a", b"same")
    assert first[:12] != second[:12]
    assert first != second


@pytest.mark.parametrize("position", [0, 12, 20, -1])
def test_a_flipped_bit_is_detected(vault: Vault, position: int) -> None:
    key_id, blob = vault.seal("conn-a", b"secret cache")
    damaged = bytearray(blob)
    damaged[position] ^= 0x01
    with pytest.raises(ConnectionDamaged):
        vault.open("conn-a", key_id, bytes(damaged))


def test_a_truncated_blob_is_damaged(vault: Vault) -> None:
    with pytest.raises(ConnectionDamaged):
        vault.open("conn-a", "k1", b"short")


def test_a_blob_copied_to_another_connection_does_not_open(vault: Vault) -> None:
    key_id, blob = vault.seal("conn-b", b"b's cache")
    with pytest.raises(ConnectionDamaged):
        vault.open("conn-a", key_id, blob)


def test_an_unknown_key_id_is_not_empty_credentials(vault: Vault) -> None:
    _, blob = vault.seal("conn-a", b"cache")
    with pytest.raises(UnknownKey):
        vault.open("conn-a", "k0", blob)


def test_rotation_seals_with_the_newest_and_opens_the_older() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    hash_key = b64(secrets.token_bytes(32))
    before = Vault.from_config(f"v1:{b64(old)}", hash_key)
    kid, blob = before.seal("conn-a", b"cache")
    after = Vault.from_config(f"v2:{b64(new)},v1:{b64(old)}", hash_key)
    assert after.current_kid == "v2"
    assert after.key_ids == ("v2", "v1")
    assert after.open("conn-a", kid, blob) == b"cache"
    assert after.needs_rotation(kid)
    new_kid, _ = after.seal("conn-a", b"cache")
    assert new_kid == "v2"
    assert not after.needs_rotation(new_kid)
    only_new = Vault.from_config(f"v2:{b64(new)}", hash_key)
    with pytest.raises(UnknownKey):
        only_new.open("conn-a", kid, blob)


def test_codes_are_long_random_and_recognisable(vault: Vault) -> None:
    codes = {vault.new_code() for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert code.startswith("ccp_")
        assert len(code) == 4 + 43
        assert "=" not in code
        assert vault.looks_like_code(code)
    assert not vault.looks_like_code("ccp_short")
    assert not vault.looks_like_code("xyz_" + "a" * 43)
    assert not vault.looks_like_code(next(iter(codes)) + "x")


def test_code_hash_is_keyed_and_stable() -> None:
    code = Vault.new_code()
    a = Vault({"k": bytes(32)}, "k", b"a" * 32)
    b = Vault({"k": bytes(32)}, "k", b"b" * 32)
    assert a.hash_code(code) == a.hash_code(code)
    assert a.hash_code(code) != b.hash_code(code)
    assert len(a.hash_code(code)) == 64
    assert code not in a.hash_code(code)
    assert a.hash_token(code) != a.hash_code(code)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "nokey",
        "k1:not-base64!!",
        f"k1:{b64(b'short')}",
        f"k1:{b64(bytes(32))},k1:{b64(bytes(32))}",
    ],
)
def test_bad_key_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        Vault.from_config(spec, b64(bytes(32)))


def test_parse_keys_keeps_order_and_accepts_urlsafe() -> None:
    raw = bytes(range(32))
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    keys = parse_keys(f"b:{urlsafe}, a:{b64(raw)}")
    assert list(keys) == ["b", "a"]
    assert keys["a"] == keys["b"] == raw


def test_short_hash_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        Vault({"k": bytes(32)}, "k", b"short")
