"""Token values: the portal's answer, and azure-core's token types or look-alikes without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class _AccessToken(NamedTuple):
    """Stand in for azure.core.credentials.AccessToken when azure-core is not installed."""

    token: str
    expires_on: int


class _AccessTokenInfo(NamedTuple):
    """Stand in for azure.core.credentials.AccessTokenInfo when azure-core is not installed."""

    token: str
    expires_on: int
    token_type: str = "Bearer"
    refresh_on: int | None = None


try:  # azure-core is optional; its SDKs check isinstance(result, AccessToken)
    from azure.core.credentials import AccessToken
    from azure.core.credentials import AccessTokenInfo
except ImportError:
    AccessToken = _AccessToken  # type: ignore[misc,assignment]
    AccessTokenInfo = _AccessTokenInfo  # type: ignore[misc,assignment]


@dataclass(frozen=True)
class PortalToken:
    """An access token as the portal's token API answered it."""

    access_token: str
    expires_at: int
    scope: str
    connector: str | None = None

    def __repr__(self) -> str:
        """Describe the token without its secret."""
        return f"PortalToken(expires_at={self.expires_at}, scope={self.scope!r})"

    def fresh(self, now: float, margin: float) -> bool:
        """Tell whether the token still has more than margin seconds to live."""
        return self.expires_at - margin > now
