"""Azure Blob Storage: List Containers, List Blobs, Get Blob and Get Blob Properties."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from xml.sax.saxutils import escape

from flask import request
from werkzeug.wrappers import Response

from entra_emulator import content
from entra_emulator import storage_xml
from entra_emulator.resources import TokenProblem
from entra_emulator.resources import authenticate_header
from entra_emulator.resources import bearer
from entra_emulator.resources import has_scope
from entra_emulator.resources import user_of
from entra_emulator.runtime import current
from entra_emulator.storage_xml import BlobItem
from entra_emulator.world import STORAGE_DATA_ROLES

STORAGE = "https://storage.azure.com"
MIN_STORAGE_VERSION = "2017-11-09"
DENIED = "This request is not authorized to perform this operation using this permission."
NOT_MET = "The condition specified using HTTP conditional header(s) is not met."
BAD_RANGE = "The range specified is invalid for the current size of the resource."
BAD_VALUE = "Value for one of the query parameters specified in the request URI is invalid."
OUT_OF_RANGE = (
    "One of the query parameters specified in the request URI is outside the permissible range."  # noqa: E501
)
FAULTS = {
    401: ("InvalidAuthenticationInfo", "Server failed to authenticate the request."),
    429: ("ServerBusy", "The server is busy."),
    503: ("ServerBusy", "The server is busy."),
    500: ("InternalError", "The server encountered an internal error."),
}


class StorageError(Exception):
    """A request Blob Storage answers with its XML error."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        """Keep the status, the x-ms-error-code, the message and extra headers."""
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(error: StorageError) -> Response:
    """Return Azure Storage's XML error with its request id."""
    request_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
        f"{error.code}</Code><Message>{escape(error.message)}\nRequestId:{request_id}\n"
        f"Time:{now}</Message></Error>"
    )
    response = Response(body, status=error.status, mimetype="application/xml")
    response.headers.update({"x-ms-request-id": request_id, "x-ms-error-code": error.code})
    if request.headers.get("x-ms-version"):
        response.headers["x-ms-version"] = request.headers["x-ms-version"]
    response.headers.update(error.headers)
    return response


def fault_response(status: int) -> Response:
    """Return the answer of an injected fault (ServerBusy for throttling, as Storage does)."""
    code, message = FAULTS.get(status, ("InternalError", "An injected failure."))
    headers = {"WWW-Authenticate": authenticate_header("common", STORAGE)} if status == 401 else {}
    return error_response(StorageError(status, code, message, **headers))


def _authorize(account: str) -> str:
    """Check the account, x-ms-version, the token and the data role; return the version."""
    if account not in current().state.world.storage_accounts:
        raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
    version = request.headers.get("x-ms-version", "")
    if not version:
        raise StorageError(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
        )
    if version < MIN_STORAGE_VERSION:
        raise StorageError(
            403,
            "AuthenticationFailed",
            "Authentication scheme Bearer is not supported in this version.",
        )
    try:
        claims = bearer([STORAGE, f"https://{account}.blob.core.windows.net"])
    except TokenProblem as problem:
        empty = "empty" in str(problem)
        code = "NoAuthenticationInformation" if empty else "InvalidAuthenticationInfo"
        challenge = {"WWW-Authenticate": authenticate_header("common", STORAGE)}
        message = f"Server failed to authenticate the request. {problem}"
        raise StorageError(401, code, message, **challenge) from None
    user = user_of(claims)
    roles = set(user.storage_roles if user else []) & set(STORAGE_DATA_ROLES)
    if user is None or not has_scope(claims, "user_impersonation") or not roles:
        raise StorageError(403, "AuthorizationPermissionMismatch", DENIED)
    return version


def _answer(version: str, response: Response) -> Response:
    """Add the headers every Blob Storage answer carries."""
    response.headers["x-ms-request-id"] = response.headers.get("x-ms-request-id", str(uuid.uuid4()))
    response.headers["x-ms-version"] = version
    if request.headers.get("x-ms-client-request-id"):
        response.headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
    return response


def _run(account: str, view: str, *args: str) -> Response:
    """Authorize, run one operation, and answer its StorageError as XML."""
    try:
        version = _authorize(account)
        return _answer(version, OPERATIONS[view](account, *args))
    except StorageError as error:
        return error_response(error)


def _marker(value: str | None) -> str:
    """Return the name a marker points at; a marker the emulator did not write is a 400."""
    try:
        return storage_xml.marker_name(value)
    except ValueError:
        message = "One of the request inputs is out of range."
        raise StorageError(400, "OutOfRangeInput", message) from None


def _max_results(kind: str) -> int:
    """Return maxresults: up to 5,000; zero or less is a 400."""
    cap = current().state.world.data.page_sizes[kind]
    raw = request.args.get("maxresults")
    if raw is None:
        return cap
    if not raw.lstrip("-").isdigit() or int(raw) <= 0:
        raise StorageError(400, "OutOfRangeQueryParameterValue", OUT_OF_RANGE)
    return min(int(raw), cap)


def storage_list(account: str) -> Response:
    """Answer GET /?comp=list: List Containers with prefix, marker and maxresults."""
    return _run(account, "containers")


def container(account: str, name: str) -> Response:
    """Answer List Blobs (?restype=container&comp=list) or Get Container Properties."""
    return _run(account, "container", name)


def blob(account: str, name: str, path: str) -> Response:
    """Answer Get Blob (GET) or Get Blob Properties (HEAD)."""
    return _run(account, "blob", name, path)


def _containers(account: str) -> Response:
    """List the account's containers after the marker, in name order."""
    if request.args.get("comp") != "list":
        raise StorageError(400, "InvalidQueryParameterValue", BAD_VALUE)
    prefix, limit = request.args.get("prefix", ""), _max_results("containers")
    after = _marker(request.args.get("marker"))
    names = [
        n
        for n in sorted(current().state.world.storage_accounts[account])
        if n.startswith(prefix) and n >= after
    ]
    next_marker = storage_xml.new_marker(names[limit]) if len(names) > limit else ""
    echo = storage_xml.echo(request.args, "prefix", "marker", "maxresults")
    xml = storage_xml.containers(account, names[:limit], next_marker, echo)
    return Response(xml, mimetype="application/xml")


def _container(account: str, name: str) -> Response:
    """List a container's blobs, or answer its properties."""
    if name not in current().state.world.storage_accounts[account]:
        raise StorageError(404, "ContainerNotFound", "The specified container does not exist.")
    if request.args.get("restype") != "container":
        raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")  # in $root
    if request.args.get("comp") != "list":
        return Response(headers=storage_xml.container_headers(account, name))
    prefix, delimiter = request.args.get("prefix", ""), request.args.get("delimiter", "")
    items, next_name = storage_xml.listing(
        storage_xml.blobs_of(account, name),
        prefix,
        delimiter,
        _marker(request.args.get("marker")),
        _max_results("blobs"),
    )
    next_marker = storage_xml.new_marker(next_name) if next_name else ""
    echo = storage_xml.echo(request.args, "prefix", "marker", "maxresults", "delimiter")
    xml = storage_xml.blob_list(account, name, items, next_marker, echo)
    return Response(xml, mimetype="application/xml")


def _blob(account: str, name: str, path: str) -> Response:
    """Stream a blob's bytes (x-ms-range or Range, conditional headers) or its properties."""
    if name not in current().state.world.storage_accounts[account]:
        raise StorageError(404, "ContainerNotFound", "The specified container does not exist.")
    item: BlobItem | None = next(
        (b for b in storage_xml.blobs_of(account, name) if b.name == path), None
    )
    if item is None:
        raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")
    head = request.method == "HEAD"  # Get Blob Properties: no range, the whole size
    wanted = None if head else request.headers.get("x-ms-range") or request.headers.get("Range")
    plan = content.plan(
        item.size,
        item.etag,
        wanted,
        request.headers.get("If-None-Match"),
        request.headers.get("If-Match"),
    )
    if plan.status == 412:
        raise StorageError(412, "ConditionNotMet", NOT_MET)
    if plan.status == 416:
        span = {"Content-Range": content.content_range(plan, item.size)}
        raise StorageError(416, "InvalidRange", BAD_RANGE, **span)
    return content.respond(plan, item.seed, item.size, item.headers(properties=head))


OPERATIONS: dict[str, Callable[..., Response]] = {
    "containers": _containers,
    "container": _container,
    "blob": _blob,
}
