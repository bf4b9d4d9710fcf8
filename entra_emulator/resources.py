"""What the resource APIs share: bearer-token checks worded as the real services word them."""

from __future__ import annotations

from typing import Any

import jwt
from flask import g
from flask import request

from entra_emulator.runtime import current
from entra_emulator.world import User


class TokenProblem(Exception):
    """A bearer token the resource refuses; the message is the service's own wording."""


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
