"""Run the emulator: python -m entra_emulator --port Q --state-dir D."""

import sys

from entra_emulator.cli import main

sys.exit(main())
