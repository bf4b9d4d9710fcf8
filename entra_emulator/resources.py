"""What the resource APIs share: bearer-token checks worded as the real services word them."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
from flask import g
from flask import request

from entra_emulator.runtime import current
from entra_emulator.world import User


class TokenProblem(Exception):
    """A bearer token the resource refuses; the message is the service's own wording."""


class ClaimsChallenge(TokenProblem):
    """A CAE resource refuses a capable token after a critical event: 401 insufficient_claims."""

    def __init__(self, not_before: float) -> None:
        """Keep the challenge's claims: a token issued at or after not_before is needed."""
        super().__init__("Continuous access evaluation resulted in claims challenge")
        wanted = {"access_token": {"nbf": {"essential": True, "value": str(int(not_before))}}}
        self.claims = base64.b64encode(json.dumps(wanted).encode()).decode()

    def header(self, authorization_uri: str, client_id: str) -> str:
        """Return the WWW-Authenticate value Graph sends with the challenge."""
        return (
            f'Bearer realm="", authorization_uri="{authorization_uri}", client_id="{client_id}", '
            f'error="insufficient_claims", claims="{self.claims}"'
        )


def bearer(audiences: list[str]) -> dict[str, Any]:
    """Return the claims of the request's bearer token; raise TokenProblem if it is not valid."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise TokenProblem("Access token is empty.")
    try:
        claims = current().keys.verify(header[7:].strip(), audiences)
    except jwt.ExpiredSignatureError:
        raise TokenProblem("Lifetime validation failed, the token is expired.") from None
    except jwt.InvalidAudienceError:
        raise TokenProblem("Invalid audience.") from None
    except jwt.InvalidTokenError:
        raise TokenProblem("Access token validation failure.") from None
    # The request log names whose token called the API (a portal test asks "who read this?").
    g.log_fields = getattr(g, "log_fields", {}) | {"username": claims.get("upn")}
    return claims


def check_critical_events(claims: dict[str, Any]) -> None:
    """Refuse a CAE-capable token whose user was disabled, deleted or had a critical event.

    Tokens without the CP1 capability stay valid until they expire, as Entra's are.
    """
    if "CP1" not in (claims.get("xms_cc") or ()):
        return
    user = user_of(claims)
    if user is None or user.disabled or user.deleted:
        raise ClaimsChallenge(time.time())
    if user.critical_event_at and int(claims.get("iat", 0)) < int(user.critical_event_at):
        raise ClaimsChallenge(user.critical_event_at)


def has_scope(claims: dict[str, Any], *names: str) -> bool:
    """Return True if the token's scp (or, for an app-only token, its roles) holds any of names."""
    granted = set(claims.get("scp", "").split())
    if claims.get("idtyp") == "app":
        granted |= set(claims.get("roles") or ())
    return bool(granted & set(names))


def user_of(claims: dict[str, Any]) -> User | None:
    """Return the user a delegated token was issued to."""
    return next(
        (u for u in current().state.world.users.values() if u.oid == claims.get("oid")), None
    )


def authenticate_header(tid: str, resource: str) -> str:
    """Return the WWW-Authenticate challenge pointing at this emulator's authorize endpoint."""
    authorize = f"{current().browser_url}/{tid}/oauth2/authorize"
    return f'Bearer authorization_uri="{authorize}", resource_id="{resource}"'
