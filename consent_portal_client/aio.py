"""AsyncPortalCredential: azure-core's AsyncTokenCredential over the same cache and retries."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from consent_portal_client.credential import PortalCredential
from consent_portal_client.tokens import AccessToken
from consent_portal_client.tokens import AccessTokenInfo


class AsyncPortalCredential:
    """The asynchronous face of PortalCredential; a refresh runs in a worker thread."""

    def __init__(self, code: str, portal_url: str, **options: Any) -> None:
        """Take PortalCredential's arguments."""
        self.sync = PortalCredential(code, portal_url, **options)

    def __repr__(self) -> str:
        """Describe the credential without its code."""
        return f"AsyncPortalCredential(portal_url={self.sync.portal_url!r})"

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return a token for scopes (AsyncTokenCredential)."""
        # A worker thread, so a refresh and its Retry-After waits never block the event loop.
        return await asyncio.to_thread(self.sync.get_token, *scopes)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """Return a token for scopes with the time to refresh it (AsyncSupportsTokenInfo)."""
        return await asyncio.to_thread(self.sync.get_token_info, *scopes)

    async def close(self) -> None:
        """Close the underlying credential."""
        self.sync.close()

    async def __aenter__(self) -> AsyncPortalCredential:
        """Return the credential for an async with block."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the credential at the end of an async with block."""
        await self.close()
