"""Seal and open token caches (AES-GCM, key ids, rotation); HMAC of connection codes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import ConfigError
from app.errors import ConnectionDamaged
from app.errors import UnknownKey

CODE_PREFIX = "ccp_"
NONCE_BYTES = 12
# "ccp_" + 43 characters of unpadded base64url (32 bytes); anything else is not ours.
CODE_PATTERN = re.compile(r"ccp_[A-Za-z0-9_-]{43}")
KID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")


class Vault:
    """Hold the encryption keys and the code-hash key; no Flask, no I/O."""

    def __init__(self, keys: dict[str, bytes], current_kid: str, hash_key: bytes) -> None:
        if current_kid not in keys:
            raise ConfigError(f"PORTAL_ENCRYPTION_KEYS has no key {current_kid!r}")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ConfigError(f"PORTAL_ENCRYPTION_KEYS: key {kid!r} must be 32 bytes")
        if len(hash_key) < 32:
            raise ConfigError("PORTAL_HASH_KEY must be at least 32 bytes")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current_kid = current_kid
        self._hash_key = hash_key

    @classmethod
    def from_config(cls, encryption_keys: str, hash_key: str) -> Vault:
        """Build from "kid2:<b64>,kid1:<b64>" (newest first) and a base64 hash key."""
        keys = parse_keys(encryption_keys)
        return cls(keys, next(iter(keys)), _b64decode(hash_key, "PORTAL_HASH_KEY"))

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Return every key id this vault can open, newest first."""
        return tuple(self._aead)

    def seal(self, connection_id: str, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt under the newest key; return its id and nonce||ciphertext."""
        nonce = secrets.token_bytes(NONCE_BYTES)  # fresh per write: GCM breaks on nonce reuse
        sealed = self._aead[self.current_kid].encrypt(nonce, plaintext, connection_id.encode())
        return self.current_kid, nonce + sealed

    def open(self, connection_id: str, key_id: str, blob: bytes) -> bytes:
        """Decrypt a blob sealed for this connection id, or raise."""
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKey()  # never treat the credentials as empty (C39)
        if len(blob) < NONCE_BYTES + 16:
            raise ConnectionDamaged()
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], connection_id.encode())
        except InvalidTag:
            raise ConnectionDamaged() from None

    def needs_rotation(self, key_id: str) -> bool:
        """Return True when a blob is sealed under an older key."""
        return key_id != self.current_kid

    @staticmethod
    def new_code() -> str:
        """Return a fresh connection code: "ccp_" + 32 random bytes in base64url."""
        raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
        return CODE_PREFIX + raw.decode("ascii")

    @staticmethod
    def looks_like_code(value: str) -> bool:
        """Return True when value has the shape of a connection code."""
        return CODE_PATTERN.fullmatch(value) is not None

    def hash_code(self, code: str) -> str:
        """Return the lookup digest for a connection code."""
        # HMAC, not a slow KDF: codes carry 256 random bits and this runs on every API call.
        return self._hmac(b"code", code)

    def hash_token(self, token: str) -> str:
        """Return the lookup digest for a link token (domain-separated from codes)."""
        return self._hmac(b"link", token)

    def _hmac(self, purpose: bytes, value: str) -> str:
        """Return HMAC-SHA256 hex of value under a per-purpose derived key."""
        key = (
            self._hash_key if purpose == b"code" else hmac.digest(self._hash_key, purpose, "sha256")
        )
        return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def parse_keys(spec: str) -> dict[str, bytes]:
    """Parse "kid:<base64 32 bytes>,..." keeping order (newest first)."""
    keys: dict[str, bytes] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, material = part.partition(":")
        if not sep or not KID_PATTERN.fullmatch(kid):
            raise ConfigError("PORTAL_ENCRYPTION_KEYS must look like 'kid2:<base64>,kid1:<base64>'")
        if kid in keys:
            raise ConfigError(f"PORTAL_ENCRYPTION_KEYS names key id {kid!r} twice")
        keys[kid] = _b64decode(material, f"PORTAL_ENCRYPTION_KEYS key {kid!r}")
    if not keys:
        raise ConfigError("PORTAL_ENCRYPTION_KEYS is empty")
    return keys


def _b64decode(text: str, name: str) -> bytes:
    """Decode standard or urlsafe base64, with or without padding."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid base64") from None


def generate_key() -> str:
    """Return 32 random bytes in base64, for PORTAL_ENCRYPTION_KEYS or PORTAL_HASH_KEY."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")
