"""The `ig-outbound` command line (typer). Subcommands import what they need lazily, so
`ig-outbound send` never loads the worker or the emulator."""

from ig_outbound.cli.app import app, main

__all__ = ["app", "main"]
