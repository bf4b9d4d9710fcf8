"""MSAL's debug dumps never reach a handler, whatever level is configured (C40)."""

from __future__ import annotations

import logging

import pytest

from app.identity import msal_logs


def test_token_cache_event_dump_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    msal_logs.install()
    caplog.set_level(logging.DEBUG, logger="msal")
    logging.getLogger("msal.token_cache").debug('event={"code": "%s"}', "secret-code-123")
    logging.getLogger("msal.application").debug("Refresh failed. invalid_grant: AADSTS50173")
    logging.getLogger("msal.application").debug("Cache hit an AT")
    assert "secret-code-123" not in caplog.text and "Refresh failed" not in caplog.text
    assert "Cache hit an AT" in caplog.text


def test_install_is_idempotent() -> None:
    msal_logs.install()
    msal_logs.install()
    assert len(logging.getLogger("msal.token_cache").filters) == 1
