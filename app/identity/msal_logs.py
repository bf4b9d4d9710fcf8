"""Keep MSAL's own debug output from carrying secrets into any log handler (C40)."""

from __future__ import annotations

import logging

# msal.token_cache dumps every token event at DEBUG with the auth code and PKCE verifier unmasked;
# msal.application logs Entra's error_description verbatim when a refresh fails.
NOISY = {
    "msal.token_cache": ("event=",),
    "msal.application": ("Refresh failed",),
}


class DropSecretDumps(logging.Filter):
    """Drop the MSAL records known to carry codes, verifiers or Entra's raw error text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for a record that starts like one of MSAL's secret-bearing dumps."""
        starts = NOISY.get(record.name, ())
        return not any(str(record.msg).startswith(start) for start in starts)


def install() -> None:
    """Attach the filter to MSAL's loggers once per process."""
    for name in NOISY:
        target = logging.getLogger(name)
        if not any(isinstance(f, DropSecretDumps) for f in target.filters):
            target.addFilter(DropSecretDumps())
