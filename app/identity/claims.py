"""Claims challenges (Continuous Access Evaluation), Flask-free: read one, pass it to MSAL."""

from __future__ import annotations

import base64
import binascii
import json
import re

from app.errors import BadClaims

# MSAL Python has no parser for a resource's WWW-Authenticate header, so the two parameters CAE
# uses are read here: error="insufficient_claims" and claims="<base64 JSON>".
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"')
MAX_CLAIMS = 4096  # a challenge is a few hundred characters; anything longer is not one


def capabilities() -> list[str]:
    """Return the client capabilities the portal declares: CP1, it can handle claims challenges."""
    return ["CP1"]


def decode(value: str) -> str:
    """Return the JSON a claims challenge's base64 value holds (MSAL's claims_challenge)."""
    text = value.strip()
    if not text or len(text) > MAX_CLAIMS:
        raise BadClaims()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        parsed = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadClaims() from None
    if not isinstance(parsed, dict) or not parsed:
        raise BadClaims()
    return json.dumps(parsed, separators=(",", ":"))


def encode(claims: str) -> str:
    """Return the base64 form of a claims JSON, as a challenge and a reconnect link carry it."""
    return base64.b64encode(claims.encode()).decode()


def from_challenge(header: str) -> str | None:
    """Return the claims JSON of a WWW-Authenticate insufficient_claims challenge, else None."""
    params = {name.lower(): value for name, value in _PARAM.findall(header or "")}
    if params.get("error") != "insufficient_claims" or not params.get("claims"):
        return None
    try:
        return decode(params["claims"])
    except BadClaims:
        return None
