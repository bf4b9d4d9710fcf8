"""The token API for data tools: JSON only, Bearer codes only, no cookies, no CSRF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response
from flask import request
from flask.typing import ResponseReturnValue

from app.identity import claims
from app.platform import extensions
from app.web.bearer import bearer_code
from app.web.bearer import limited
from app.web.bearer import machine_blueprint

bp = machine_blueprint("api", __name__)
OPENAPI = (Path(__file__).parent / "openapi.json").read_bytes()  # relative server URL: "."


@bp.post("/token")
@limited
def token() -> ResponseReturnValue:
    """Trade a connection code for a current access token."""
    code = bearer_code()
    scopes = requested_scopes()
    return extensions.broker().access_token(code, scopes, claims=requested_claims())


@bp.get("/connection")
@limited
def connection() -> ResponseReturnValue:
    """Describe the connection a code belongs to."""
    return extensions.broker().connection_info(bearer_code())


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """Describe this API in OpenAPI 3.1 (app/web/openapi.json, served as it is)."""
    return Response(OPENAPI, mimetype="application/json")


def requested_scopes() -> list[str] | None:
    """Return the optional narrower scopes asked for in the body ("scope", space-separated)."""
    raw = _body_field("scope")
    if raw is None:
        return None
    return [s for s in str(raw).split() if s][:32] or None


def requested_claims() -> str | None:
    """Return the claims challenge the tool got from a resource ("claims", its base64 value)."""
    raw = _body_field("claims")
    return None if raw is None else claims.decode(str(raw))


def _body_field(name: str) -> Any:
    """Return one field of a JSON or form body, or None."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body.get(name) if isinstance(body, dict) else None
    if request.form:
        return request.form.get(name)
    return None
