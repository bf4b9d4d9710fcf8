"""Data for tools, with the same Bearer code: the read-only proxy and table exports."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response
from flask import request
from flask.typing import ResponseReturnValue

from app.data.proxy import query_without
from app.errors import BadProxyRequest
from app.platform import extensions
from app.platform import metrics
from app.web.bearer import bearer_code
from app.web.bearer import limited
from app.web.bearer import machine_blueprint

bp = machine_blueprint("data", __name__)
PROXY_PREFIX = "/api/v1/proxy/"
PORTAL_PARAMS = ("account",)  # the portal's own query parameters, never sent upstream


@bp.route("/proxy/", defaults={"path": ""}, methods=["GET", "HEAD"], merge_slashes=False)
@bp.route("/proxy/<path:path>", methods=["GET", "HEAD"], merge_slashes=False)
@limited
def proxy(path: str) -> ResponseReturnValue:
    """Forward a read to the connection's resource with a fresh token; stream the answer."""
    code = bearer_code()
    query = request.query_string.decode("latin-1")
    upstream = extensions.proxy().forward(
        code,
        request.method,
        _raw_path(),  # as sent: werkzeug has decoded %2F and %2e in `path`
        query_without(query, PORTAL_PARAMS),
        dict(request.headers),
        account=request.args.get("account"),
    )
    metrics.proxied(upstream.connector, upstream.status)
    return Response(
        upstream.body, status=upstream.status, headers=upstream.headers, direct_passthrough=True
    )


@bp.get("/tables")
@limited
def tables() -> ResponseReturnValue:
    """List the tables of the caller's connector with their parameters."""
    return {"tables": extensions.exporter().listing(bearer_code())}


@bp.get("/tables/<name>")
@limited
def table(name: str) -> ResponseReturnValue:
    """Stream a table's rows as CSV (default), JSON or NDJSON, every page to the end."""
    export = extensions.exporter().open(bearer_code(), name, request.args.to_dict())
    # No stream_with_context: later pages are read in a thread of the exporter's anyway, and
    # the broker's sessions are bound to the engine, not to this request.
    return Response(export.body, mimetype=export.media_type, direct_passthrough=True)


@bp.route("/proxy//<path:path>", methods=["GET", "HEAD"], merge_slashes=False)
def proxy_to_host(path: str) -> ResponseReturnValue:
    """Refuse a path that names another host (//host/...) before anything else."""
    raise BadProxyRequest("Give a path on the connection's resource, not a URL or host.")


def _raw_path() -> str:
    """Return the path after /api/v1/proxy/ exactly as the client sent it."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(request.path)
    path = str(raw).split("?", 1)[0]
    return path[len(PROXY_PREFIX) :] if path.startswith(PROXY_PREFIX) else path.lstrip("/")
