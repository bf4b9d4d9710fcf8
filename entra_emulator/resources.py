"""Resource APIs that check bearer tokens as the real services do: Dynamics and Azure Storage."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from xml.sax.saxutils import escape

import jwt
from flask import Response
from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from entra_emulator.runtime import current
from entra_emulator.world import STORAGE_DATA_ROLES
from entra_emulator.world import User
from entra_emulator.world import stable_id

STORAGE = "https://storage.azure.com"
MIN_STORAGE_VERSION = "2017-11-09"
WHOAMI_TYPE = "Microsoft.Dynamics.CRM.WhoAmIResponse"


class TokenProblem(Exception):
    """A bearer token the resource refuses; the message is the service's own wording."""


def bearer(audiences: list[str]) -> dict[str, Any]:
    """Return the claims of the request's bearer token; raise TokenProblem if it is not valid."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise TokenProblem("Access token is empty.")
    try:
        return current().keys.verify(header[7:].strip(), audiences)
    except jwt.ExpiredSignatureError:
        raise TokenProblem("Lifetime validation failed, the token is expired.") from None
    except jwt.InvalidAudienceError:
        raise TokenProblem("Invalid audience.") from None
    except jwt.InvalidTokenError:
        raise TokenProblem("Access token validation failure.") from None


def has_scope(claims: dict[str, Any], *names: str) -> bool:
    """Return True if the token's scp holds any of names."""
    return bool(set(claims.get("scp", "").split()) & set(names))


def user_of(claims: dict[str, Any]) -> User | None:
    """Return the user a delegated token was issued to."""
    return next(
        (u for u in current().state.world.users.values() if u.oid == claims.get("oid")), None
    )


def _authenticate_header(tid: str, resource: str) -> str:
    """Return the WWW-Authenticate challenge pointing at this emulator's authorize endpoint."""
    authorize = f"{current().browser_url}/{tid}/oauth2/authorize"
    return f'Bearer authorization_uri="{authorize}", resource_id="{resource}"'


def dynamics_whoami(org: str) -> ResponseReturnValue:
    """Answer Dataverse WhoAmI for a user with a security role in that environment."""
    org = org.lower()
    resource = f"https://{org}"
    try:
        claims = bearer([resource])
    except TokenProblem as problem:
        response = jsonify({"error": {"code": "0x80072560", "message": str(problem)}})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = _authenticate_header("common", resource)
        return response
    user = user_of(claims)
    if not has_scope(claims, "user_impersonation") or user is None or org not in user.dynamics_orgs:
        message = "The user is not a member of the organization."
        return {"error": {"code": "0x80072560", "message": message}}, 403
    return {
        "@odata.context": f"{resource}/api/data/v9.2/$metadata#{WHOAMI_TYPE}",
        "BusinessUnitId": stable_id("bu", org),
        "UserId": stable_id("systemuser", org, user.username),
        "OrganizationId": stable_id("org", org),
    }


def _storage_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Return an Azure Storage XML error."""
    request_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
        f"{code}</Code><Message>{escape(message)}\nRequestId:{request_id}\nTime:{now}</Message></Error>"
    )
    response = Response(body, status=status, mimetype="application/xml")
    response.headers.update({"x-ms-request-id": request_id, "x-ms-error-code": code})
    response.headers.update(headers or {})
    return response


def storage_list(account: str) -> ResponseReturnValue:
    """List containers if the caller's token is valid and the user holds a data role."""
    containers = current().state.world.storage_accounts.get(account)
    if containers is None:
        return _storage_error(404, "ResourceNotFound", "The specified resource does not exist.")
    if request.args.get("comp") != "list":
        return _storage_error(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
    version = request.headers.get("x-ms-version", "")
    if not version:
        return _storage_error(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
        )
    if version < MIN_STORAGE_VERSION:
        return _storage_error(
            403,
            "AuthenticationFailed",
            "Authentication scheme Bearer is not supported in this version.",
        )
    try:
        claims = bearer([STORAGE, f"https://{account}.blob.core.windows.net"])
    except TokenProblem as problem:
        challenge = {"WWW-Authenticate": _authenticate_header("common", STORAGE)}
        code = (
            "NoAuthenticationInformation"
            if "empty" in str(problem)
            else "InvalidAuthenticationInfo"
        )
        return _storage_error(
            401, code, f"Server failed to authenticate the request. {problem}", challenge
        )
    user = user_of(claims)
    if (
        user is None
        or not has_scope(claims, "user_impersonation")
        or not set(user.storage_roles) & set(STORAGE_DATA_ROLES)
    ):
        return _storage_error(
            403,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
    items = "".join(
        f'<Container><Name>{escape(name)}</Name><Properties><Etag>"0x8D{i:011X}"</Etag></Properties></Container>'
        for i, name in enumerate(containers)
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<EnumerationResults ServiceEndpoint="{current().base_url}/storage/{escape(account)}/">'
        f"<Containers>{items}</Containers><NextMarker /></EnumerationResults>"
    )
    response = Response(body, mimetype="application/xml")
    response.headers["x-ms-version"] = version
    return response
