"""`consent-portal emulator`: the Entra emulator alone, its state in the instance folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.platform import instance


@click.command(
    add_help_option=False,  # --help reaches the emulator's own parser, which knows its options
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Entra emulator alone (`emulator --help` lists its options)."""
    from entra_emulator.cli import main as emulator_main

    args = list(ctx.args)
    if not any(arg == "--state-dir" or arg.startswith("--state-dir=") for arg in args):
        args += ["--state-dir", str(Path(instance.path()) / "emulator")]  # where the demo keeps it
    sys.exit(emulator_main(args))
