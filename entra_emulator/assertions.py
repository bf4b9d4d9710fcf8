"""Client assertions (private_key_jwt) checked against the certificates registered on an app."""

from __future__ import annotations

import base64
import hashlib

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from entra_emulator.app_credentials import credential
from entra_emulator.errors import EntraError
from entra_emulator.world import App


def thumbprints(pem: str) -> tuple[str, str]:
    """Return the base64url SHA-1 and SHA-256 thumbprints of a PEM certificate."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)

    def enc(digest: bytes) -> str:
        """Return the unpadded base64url text of a digest."""
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    return enc(hashlib.sha1(der).digest()), enc(hashlib.sha256(der).digest())


def _reject(reason: str) -> EntraError:
    """Return the 401 invalid_client error for a bad assertion."""
    return EntraError(700027, status=401, reason=reason)


def verify_assertion(app: App, assertion: str, token_endpoint: str) -> None:
    """Verify signature, issuer, subject, audience and lifetime of a client assertion."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        raise _reject("The assertion is not a JWT.") from None
    wanted = (header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")  # MSAL pads
    candidates = [pem for pem in app.certificates if not wanted or wanted in thumbprints(pem)]
    if not candidates:
        raise _reject("Key was not found.")
    for pem in candidates:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        try:
            claims = jwt.decode(
                assertion,
                key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError as exc:
            raise _reject(str(exc)) from None
        if claims["iss"].lower() != app.client_id or claims["sub"].lower() != app.client_id:
            raise _reject("The iss and sub claims must be the client id.")
        if credential(app, pem).expired():  # the signature is good, the registered key is not
            raise _reject("The key used is expired.")
        return
    raise _reject("Signature validation failed.")
