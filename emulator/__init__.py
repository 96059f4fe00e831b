"""A faithful local stand-in for graph.instagram.com's messaging endpoint.

Serve it with ``python -m emulator --port N --config FILE.json``; in tests use
``run_emulator_process(config)`` and drive it with ``EmulatorControl(base_url)``.
"""

from emulator.app import create_app
from emulator.config import (
    AccountConfig,
    CommentConfig,
    EmulatorConfig,
    FaultSettings,
    RateLimitConfig,
    ScriptedAnswer,
)
from emulator.control import EmulatorControl
from emulator.graph_errors import GraphError
from emulator.pipeline import DEFAULT_CHECKS, Check, SendContext, SendPipeline
from emulator.server import make_server, run_emulator_process, serve
from emulator.state import EmulatorState, RecordedCall, RejectedCall

__all__ = [
    "DEFAULT_CHECKS",
    "AccountConfig",
    "Check",
    "CommentConfig",
    "EmulatorConfig",
    "EmulatorControl",
    "EmulatorState",
    "FaultSettings",
    "GraphError",
    "RateLimitConfig",
    "RecordedCall",
    "RejectedCall",
    "ScriptedAnswer",
    "SendContext",
    "SendPipeline",
    "create_app",
    "make_server",
    "run_emulator_process",
    "serve",
]
