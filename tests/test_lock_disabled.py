"""C33: with the refresh lock disabled two refreshes run; the loser re-reads and is not flagged."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from app.identity.entra import Identity
from app.identity.outcomes import TokenOutcome
from app.models import ACTIVE
from app.platform import extensions
from app.platform.services import IDENTITY
from app.tokens.broker import Broker
from app.tokens.locks import RefreshLocks
from entra_emulator import Emulator
from tests.conftest import ALL_BACKENDS
from tests.test_tokens import expired_connection

pytestmark = ALL_BACKENDS


class NoLock(RefreshLocks):
    """The refresh lock switched off: every caller "holds" it at once."""

    def __init__(self) -> None:
        super().__init__(engine=lambda: None)  # type: ignore[arg-type,return-value]

    @contextmanager
    def hold(self, connection_id: str, ttl: float) -> Iterator[bool]:
        """Yield True without locking anything."""
        yield True


class SiblingFirst:
    """The real Identity, except that the first refresh lets a sibling refresh and store first.

    That is the one interleaving the lock exists for: this caller has read the row (old refresh
    token) and reaches Entra only after the sibling's refresh has been stored.
    """

    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self.sibling: Any = None
        self.sibling_result: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._identity, name)

    def token_for(
        self,
        blob: str,
        account: str,
        scopes: Sequence[str],
        tenant: str,
        force: bool = False,
        claims: str | None = None,
    ) -> TokenOutcome:
        """Run the sibling to completion before the first call, then ask Entra for real."""
        if self.sibling is not None:
            sibling, self.sibling = self.sibling, None
            self.sibling_result = sibling()
        return self._identity.token_for(blob, account, scopes, tenant, force, claims)


def lockless_broker(app: Flask, identity: Any) -> Broker:
    """Return a broker like the app's, on the same database and vault, with no refresh lock."""
    return Broker(
        sessions=extensions.session_factory,
        engine=lambda: extensions.db.engine,
        vault=extensions.vault(),
        identity=identity,
        locks=NoLock(),
        public_url=app.config["PUBLIC_URL"],
    )


@pytest.fixture
def single_use(request: pytest.FixtureRequest, entra: Emulator) -> Iterator[bool]:
    """Switch the emulator's single-use refresh tokens on or off for one test."""
    value = bool(request.param)
    entra.control("POST", "/_emulator/settings", json={"single_use_refresh_tokens": value})
    try:
        yield value
    finally:
        entra.control("POST", "/_emulator/settings", json={"single_use_refresh_tokens": False})


@pytest.mark.parametrize("single_use", [True, False], indirect=True, ids=["single-use", "reusable"])
def test_c33_the_loser_of_an_unlocked_race_rereads_and_is_not_flagged(
    app: Flask, entra: Emulator, connect: Any, read_row: Any, single_use: bool
) -> None:
    connection_id, code = expired_connection(entra, connect)
    with app.app_context():
        identity = SiblingFirst(app.extensions[IDENTITY])
        broker = lockless_broker(app, identity)
        identity.sibling = lambda: broker.access_token(code)
        loser = broker.access_token(code)
    winner = identity.sibling_result
    assert winner is not None and winner["access_token"]
    answers = entra.request_log(endpoint="token", grant_type="refresh_token")
    if single_use:
        # The loser presented the spent refresh token (AADSTS70008), re-read the row and took
        # the winner's token from it: no third call, nothing stored twice.
        assert [a["status"] for a in answers] == [200, 400]
        assert loser["access_token"] == winner["access_token"]
    else:
        # Entra's real behaviour: the old refresh token still works, so both refreshes succeed;
        # the loser's write is refused by the version check and the winner's cache stays.
        assert [a["status"] for a in answers] == [200, 200]
        assert loser["access_token"] != winner["access_token"]
    row = read_row(connection_id)
    assert row.status == ACTIVE and row.last_error_code is None
    assert row.cache_version == 2  # one stored refresh: the winner's
    with app.app_context():  # the stored refresh token is the last one Entra accepted
        forced = extensions.broker().connection_token(connection_id, force_refresh=True)
    assert forced.access_token
    assert read_row(connection_id).status == ACTIVE
