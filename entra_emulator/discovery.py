"""OIDC discovery, the JWKS, instance discovery and the /error lookup page."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import jsonify
from flask import request

from entra_emulator.errors import lookup_text
from entra_emulator.pages import render
from entra_emulator.runtime import current
from entra_emulator.runtime import resolve
from entra_emulator.world import CONSUMER_TENANT

CLAIMS = [
    "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
    "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
    "name", "tid", "ver", "at_hash", "c_hash", "email",
]  # fmt: skip


def openid_configuration(tenant: str) -> Response:
    """Return the discovery document: back channel on HTTPS, pages on the browser origin."""
    segment, tid = resolve(tenant)
    runtime = current()
    base, pages = f"{runtime.base_url}/{segment}", f"{runtime.browser_url}/{segment}"
    document: dict[str, Any] = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": runtime.issuer(tid or "{tenantid}"),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{runtime.base_url}/graph/oidc/userinfo",
        "authorization_endpoint": f"{pages}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{pages}/oauth2/v2.0/logout",
        "claims_supported": CLAIMS,
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "EU" if tid and tid != CONSUMER_TENANT else None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
    return jsonify(document)


def jwks(tenant: str) -> Response:
    """Return the signing keys; the per-key issuer is the tenant template (2.6)."""
    segment, tid = resolve(tenant)
    issuer = current().issuer(CONSUMER_TENANT if tid == CONSUMER_TENANT else "{tenantid}")
    return jsonify(current().keys.jwks(issuer))


def instance_discovery() -> Response:
    """Answer MSAL's instance discovery with this emulator's own endpoints."""
    runtime = current()
    host = runtime.base_url.split("://", 1)[1]
    endpoint = request.args.get("authorization_endpoint", "")
    tenant = endpoint.split("/")[3] if endpoint.count("/") >= 4 else "common"
    return jsonify(
        {
            "tenant_discovery_endpoint": (
                f"{runtime.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
            ),
            "api-version": "1.1",
            "metadata": [
                {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
            ],
        }
    )


def error_lookup() -> Response:
    """Show the error lookup page that error_uri points at."""
    raw = request.args.get("code", "")
    code = int(raw) if raw.isdigit() else 0
    text = lookup_text(code)
    return render("lookup.html", code=code, text=text, status=200 if text else 404)
