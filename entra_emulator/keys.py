"""Key material in the state directory: a private CA, the TLS certificate and the signing key."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import ssl
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

VERIFIED_MAX = 10_000  # tokens whose signature was checked, kept until this many


def b64url(data: bytes) -> str:
    """Return unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _new_key() -> rsa.RSAPrivateKey:
    """Return a fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _load_or_make_key(path: Path) -> rsa.RSAPrivateKey:
    """Return the RSA key stored at path, generating it on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = _new_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    server: bool,
) -> x509.Certificate:
    """Return a certificate: a CA when issuer is None, else a loopback server certificate."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825 if server else 3650))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if server:
        sans = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        eku = x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(eku, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _load_or_make_cert(path: Path, make: Any) -> x509.Certificate:
    """Return the certificate stored at path, or make and store one."""
    if path.exists():
        return x509.load_pem_x509_certificate(path.read_bytes())
    cert: x509.Certificate = make()
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


@dataclass
class KeyRing:
    """The emulator's CA, TLS certificate and token signing key."""

    state_dir: Path
    signing_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate
    kid: str
    # PyJWT 2.15 checks each base64 character of a token in Python (~0.1 ms for one of Graph's
    # size); the emulator stands in for Graph on the benchmarks' CPUs, so a signature is
    # checked once per token and its claims kept. Expiry and audience are checked every call.
    _verified: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def ca_path(self) -> Path:
        """Return the CA certificate that clients trust."""
        return self.state_dir / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """Return the TLS server context for the HTTPS port."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.state_dir / "server.pem", self.state_dir / "server-key.pem")
        return ctx

    def sign(self, claims: dict[str, Any]) -> str:
        """Return an RS256 JWT signed with the published key."""
        headers = {"typ": "JWT", "kid": self.kid, "x5t": self.kid}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers=headers)

    def verify(self, token: str, audience: str | list[str] | None) -> dict[str, Any]:
        """Return the claims of a token this emulator signed; raise jwt errors otherwise."""
        claims = self._verified.get(token)
        if claims is None:
            claims = jwt.decode(
                token,
                self.signing_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp"]},
                leeway=0,
            )
            if len(self._verified) >= VERIFIED_MAX:
                self._verified.clear()
            self._verified[token] = claims
        elif claims["exp"] <= time.time():  # as PyJWT decides it, with no leeway
            raise jwt.ExpiredSignatureError("Signature has expired")
        if audience is not None and not _audience_matches(claims.get("aud"), audience):
            raise jwt.InvalidAudienceError("Audience doesn't match")
        return dict(claims)

    def jwks(self, issuer: str) -> dict[str, Any]:
        """Return the JWKS document of the signing key."""
        numbers = self.signing_key.public_key().public_numbers()
        der = self.signing_cert.public_bytes(serialization.Encoding.DER)
        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes(3, "big")),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "issuer": issuer,
        }
        return {"keys": [key]}


def _audience_matches(aud: object, audience: str | list[str]) -> bool:
    """Return whether a token's aud (one or several) names any of the accepted audiences."""
    held = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    return bool(held & ({audience} if isinstance(audience, str) else set(audience)))


def load(state_dir: Path) -> KeyRing:
    """Return the key ring in state_dir, creating CA, certificates and keys on first start."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_key = _load_or_make_key(state_dir / "ca-key.pem")
    ca = _load_or_make_cert(
        state_dir / "ca.pem",
        lambda: _certificate("Entra Emulator Local CA", ca_key, None, ca_key, server=False),
    )
    server_key = _load_or_make_key(state_dir / "server-key.pem")
    _load_or_make_cert(
        state_dir / "server.pem",
        lambda: _certificate("127.0.0.1", server_key, ca, ca_key, server=True),
    )
    signing_key = _load_or_make_key(state_dir / "signing-key.pem")
    signing_cert = _load_or_make_cert(
        state_dir / "signing-cert.pem",
        lambda: _certificate("Entra Emulator Token Signing", signing_key, None, signing_key, False),
    )
    thumbprint = hashlib.sha1(signing_cert.public_bytes(serialization.Encoding.DER)).digest()
    return KeyRing(state_dir, signing_key, signing_cert, b64url(thumbprint))
