"""An offline Microsoft Entra ID emulator that MSAL and a browser cannot tell apart from Entra."""

from entra_emulator.emulator import Emulator
from entra_emulator.emulator import serve
from entra_emulator.testing import SignInStopped
from entra_emulator.world import ConfigError

__all__ = ["ConfigError", "Emulator", "SignInStopped", "serve"]
