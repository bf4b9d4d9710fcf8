"""What the identity package needs from configuration, as one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> IdentitySettings:
        """Build from the app's configuration mapping."""
        return cls(
            authority_host=str(config["AUTHORITY_HOST"]).rstrip("/"),
            client_id=str(config["CLIENT_ID"]),
            redirect_uri=str(config["REDIRECT_URI"]),
            client_secret=str(config.get("CLIENT_SECRET") or ""),
            client_certificate=str(config.get("CLIENT_CERTIFICATE") or ""),
            client_certificate_key=str(config.get("CLIENT_CERTIFICATE_KEY") or ""),
            ca_file=str(config.get("CA_FILE") or ""),
            http_timeout=float(config.get("HTTP_TIMEOUT") or 10.0),
            flow_ttl=int(config.get("FLOW_TTL") or 600),
        )
