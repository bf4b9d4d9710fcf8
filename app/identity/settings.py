"""What the identity package needs from configuration, as one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GRAPH = "https://graph.microsoft.com"


@dataclass(frozen=True)
class IdentitySettings:
    """What the identity module needs from configuration."""

    authority_host: str
    client_id: str
    redirect_uri: str
    client_secret: str = ""
    client_certificate: str = ""
    client_certificate_key: str = ""
    ca_file: str = ""
    http_timeout: float = 10.0
    flow_ttl: int = 600
    # Every credential, newest first (PORTAL_CLIENT_SECRETS, PORTAL_CLIENT_CERTIFICATES, and the
    # single PORTAL_CLIENT_SECRET / PORTAL_CLIENT_CERTIFICATE after them); see credentials.py.
    client_secrets: tuple[str, ...] = ()
    client_secret_expiries: tuple[str, ...] = ()
    client_certificates: tuple[tuple[str, str], ...] = ()
    app_tenant: str = ""  # where the app is registered: Graph tells its secrets' expiry there
    graph_url: str = GRAPH
    cae: bool = True  # declare the CP1 client capability (claims challenges are handled)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> IdentitySettings:
        """Build from the app's configuration mapping."""
        secret = str(config.get("CLIENT_SECRET") or "")
        certificate = str(config.get("CLIENT_CERTIFICATE") or "")
        certificate_key = str(config.get("CLIENT_CERTIFICATE_KEY") or "")
        resources = config.get("RESOURCE_URLS") or {}
        return cls(
            authority_host=str(config["AUTHORITY_HOST"]).rstrip("/"),
            client_id=str(config["CLIENT_ID"]),
            redirect_uri=str(config["REDIRECT_URI"]),
            client_secret=secret,
            client_certificate=certificate,
            client_certificate_key=certificate_key,
            ca_file=str(config.get("CA_FILE") or ""),
            http_timeout=float(config.get("HTTP_TIMEOUT") or 10.0),
            flow_ttl=int(config.get("FLOW_TTL") or 600),
            client_secrets=tuple(secret_list(config)[0]),
            client_secret_expiries=tuple(secret_list(config)[1]),
            client_certificates=tuple(certificate_list(config)),
            app_tenant=str(config.get("APP_TENANT") or ""),
            graph_url=str(resources.get(GRAPH) or GRAPH).rstrip("/"),
            cae=bool(config.get("CAE", True)),
        )


def secret_list(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Return the secrets newest first and their expiries ('' unknown), the single one last."""
    secrets = [str(s) for s in config.get("CLIENT_SECRETS") or ()]
    expiries = [str(e) for e in config.get("CLIENT_SECRETS_EXPIRES") or ()]
    expiries = (expiries + [""] * len(secrets))[: len(secrets)]
    single = str(config.get("CLIENT_SECRET") or "")
    if single and single not in secrets:
        secrets.append(single)
        expiries.append(str(config.get("CLIENT_SECRET_EXPIRES") or ""))
    return secrets, expiries


def certificate_list(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (certificate, key) paths newest first, the single PORTAL_CLIENT_CERTIFICATE last."""
    certificates = [str(c) for c in config.get("CLIENT_CERTIFICATES") or ()]
    keys = [str(k) for k in config.get("CLIENT_CERTIFICATE_KEYS") or ()]
    keys = (keys + [""] * len(certificates))[: len(certificates)]
    pairs = list(zip(certificates, keys, strict=True))
    single = str(config.get("CLIENT_CERTIFICATE") or "")
    if single and single not in certificates:
        pairs.append((single, str(config.get("CLIENT_CERTIFICATE_KEY") or "")))
    return pairs
