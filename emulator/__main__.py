"""``python -m ig_outbound.emulator --port N --config FILE.json``: serve the emulator over HTTP."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence
from pathlib import Path

from ig_outbound.emulator.config import EmulatorConfig
from ig_outbound.emulator.server import serve


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ig_outbound.emulator",
        description="Local stand-in for graph.instagram.com's messaging endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--config", type=Path, help="JSON file with an EmulatorConfig")
    # Internal, used by run_emulator_process: serve on an inherited bound socket.
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = EmulatorConfig.from_json_file(args.config) if args.config else EmulatorConfig()
    sock = socket.socket(fileno=args.fd) if args.fd is not None else None
    serve(config, args.host, args.port, sock=sock, exit_with_parent=args.exit_with_parent)


if __name__ == "__main__":
    main()
