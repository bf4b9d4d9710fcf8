"""What the notifier needs: where notifications go, how hard to try, and how mails are sealed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Protocol


class Sealer(Protocol):
    """Authenticated encryption bound to a context (app.tokens.vault.Vault)."""

    def seal(self, context: str, plaintext: bytes, /) -> tuple[str, bytes]: ...

    def open(self, context: str, key_id: str, blob: bytes, /) -> bytes: ...


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go and how hard to try."""

    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    smtp_url: str = ""
    mail_from: str = "portal@localhost"
    timeout: float = 10.0
    max_attempts: int = 5
    backoff: float = 2.0
    background: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NotifySettings:
        """Build from the app's configuration mapping."""
        return cls(
            webhook_urls=tuple(config.get("WEBHOOK_URLS") or ()),
            webhook_secret=str(config.get("WEBHOOK_SECRET") or ""),
            smtp_url=str(config.get("SMTP_URL") or ""),
            mail_from=str(config.get("MAIL_FROM") or "portal@localhost"),
            timeout=float(config.get("HTTP_TIMEOUT") or 10.0),
            max_attempts=int(config.get("NOTIFY_MAX_ATTEMPTS") or 5),
            backoff=float(config.get("NOTIFY_BACKOFF") or 2.0),
            background=str(config.get("NOTIFY_MODE") or "thread") != "manual",
        )
