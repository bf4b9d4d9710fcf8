"""ID-token validation, Flask-free: signature, claims and tenant (MSAL checks only the nonce)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import jwt
import requests

from app.connectors import MSA_TENANT
from app.errors import IdentityUnavailable
from app.errors import SignInRejected

log = logging.getLogger(__name__)

GENERIC_TENANTS = frozenset({"common", "organizations", "consumers"})


class SigningKeys:
    """Caches the IdP's ID-token signing keys by kid, across authorities."""

    def __init__(
        self, http: requests.Session, discovery: Callable[[str], Mapping[str, Any]]
    ) -> None:
        self.http = http
        self.discovery = discovery
        self.keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, kid: str, authority: str) -> Any:
        """Return the public key for kid, refetching the JWKS once for a new kid."""
        with self._lock:
            if kid not in self.keys:
                self.keys.update(self._fetch(authority))
            jwk = self.keys.get(kid)
        if jwk is None:
            raise SignInRejected()
        return jwk

    def _fetch(self, authority: str) -> dict[str, Any]:
        """Fetch the keys named by discovery's jwks_uri."""
        uri = str(self.discovery(authority).get("jwks_uri") or "")
        try:
            response = self.http.get(uri)
            response.raise_for_status()
            keys = response.json().get("keys", [])
            return {str(k["kid"]): jwt.PyJWK(k).key for k in keys if k.get("kid")}
        except (requests.RequestException, OSError, ValueError, KeyError, jwt.PyJWTError) as error:
            log.warning("could not load signing keys: %s", type(error).__name__)
            raise IdentityUnavailable() from None


def validate_id_token(
    token: str, authority: str, *, client_id: str, authority_host: str, keys: SigningKeys
) -> dict[str, Any]:
    """Verify signature, aud, exp, iss and tid of an ID token; return its claims."""
    if not token:
        raise SignInRejected()
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise SignInRejected() from None
    tid = unverified.get("tid")
    if header.get("alg") != "RS256" or not isinstance(tid, str) or not tid:
        raise SignInRejected()
    key = keys.get(str(header.get("kid") or ""), authority)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=f"{authority_host}/{tid}/v2.0",
            leeway=120,
            options={"require": ["exp", "iat", "iss", "aud", "tid", "sub"]},
        )
    except jwt.PyJWTError:
        raise SignInRejected() from None
    check_tenant(authority, tid)
    return claims


def check_tenant(authority: str, tid: str) -> None:
    """Refuse an ID token from a tenant the flow did not ask for (C10)."""
    if authority == "consumers" and tid != MSA_TENANT:
        raise SignInRejected()
    if authority == "organizations" and tid == MSA_TENANT:
        raise SignInRejected()
    if authority not in GENERIC_TENANTS and tid.lower() != authority.lower():
        raise SignInRejected()
