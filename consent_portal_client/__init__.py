"""Access tokens from the Connector Consent Portal for Azure SDKs and `requests`.

A data tool holds a connection code (``ccp_...``); the portal trades it for a current access
token at ``POST /api/v1/token``. This package needs only `requests`; azure-core is used when
it is installed. Tokens are cached per credential until ``refresh_margin`` (300 s) before they
expire; 503 and 429 answers are retried after their Retry-After, ``max_retries`` times within
``max_wait`` seconds (3, 30 s); every request has a ``timeout`` (10 s).

Example::

    from azure.storage.blob import BlobServiceClient
    from consent_portal_client import PortalAuth, PortalCredential, ReauthenticationRequired

    credential = PortalCredential(os.environ["PORTAL_CODE"], "https://portal.example.com")
    blobs = BlobServiceClient("https://acct.blob.core.windows.net", credential=credential)
    try:
        names = [c.name for c in blobs.list_containers()]
    except ReauthenticationRequired as refused:
        print("Ask the connection's owner to reconnect:", refused.reauthenticate_url)

    # requests: the connection's own scopes, or name some of them
    drive = requests.get("https://graph.microsoft.com/v1.0/me/drive/root/children",
                         auth=PortalAuth(credential), timeout=10)

A connection has one resource: ``<resource>/.default`` asks for the connection's scopes, named
scopes ask for a subset, and scopes of another resource raise ScopeNotAllowed.
AsyncPortalCredential (``consent_portal_client.aio``) is the same for azure-core's async clients.
"""

from consent_portal_client.aio import AsyncPortalCredential
from consent_portal_client.auth import PortalAuth
from consent_portal_client.credential import PortalCredential
from consent_portal_client.errors import InvalidConnectionCode
from consent_portal_client.errors import PortalClientError
from consent_portal_client.errors import PortalUnavailable
from consent_portal_client.errors import ReauthenticationRequired
from consent_portal_client.errors import ScopeNotAllowed
from consent_portal_client.tokens import AccessToken
from consent_portal_client.tokens import AccessTokenInfo
from consent_portal_client.tokens import PortalToken

__all__ = [
    "AccessToken",
    "AccessTokenInfo",
    "AsyncPortalCredential",
    "InvalidConnectionCode",
    "PortalAuth",
    "PortalClientError",
    "PortalCredential",
    "PortalToken",
    "PortalUnavailable",
    "ReauthenticationRequired",
    "ScopeNotAllowed",
]
