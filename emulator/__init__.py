"""A faithful local stand-in for graph.instagram.com's messaging endpoint.

Serve it with ``python -m ig_outbound.emulator --port N --config FILE.json``; in tests use
``run_emulator_process(config)`` and drive it with ``EmulatorControl(base_url)``. It also plays
Instagram's side: the 24 h messaging window, signed webhooks (echoes, users' messages,
comments, reactions, postbacks, reads) and simulated users who act. With ``media.enabled`` it
serves files of any format and size over https on a port of its own (``MediaServer`` runs
that host in a test process alone) and its Graph refuses media there as Meta would. Tokens
age on the emulator's clock (60 days; ``GET /refresh_access_token`` renews them), ``GET /me``
describes the account and ``/{IG_ID}/subscribed_apps`` holds its webhook fields.
"""

from ig_outbound.emulator.app import create_app
from ig_outbound.emulator.config import (
    AccountConfig,
    AppConfig,
    CommentConfig,
    EmulatorConfig,
    FaultSettings,
    MediaConfig,
    RateLimitConfig,
    ScriptedAnswer,
    SimulatedUsersConfig,
    TokenConfig,
    WebhookConfig,
    WindowConfig,
)
from ig_outbound.emulator.control import EmulatorControl
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.media_app import MediaHost, MediaLog, Seen
from ig_outbound.emulator.media_files import media_url
from ig_outbound.emulator.media_server import MediaServer
from ig_outbound.emulator.pipeline import DEFAULT_CHECKS, Check, SendContext, SendPipeline
from ig_outbound.emulator.server import make_server, run_emulator_process, serve
from ig_outbound.emulator.state import EmulatorState, RecordedCall, RejectedCall
from ig_outbound.emulator.tokens import fingerprint as token_fingerprint

__all__ = [
    "DEFAULT_CHECKS",
    "AccountConfig",
    "AppConfig",
    "Check",
    "CommentConfig",
    "EmulatorConfig",
    "EmulatorControl",
    "EmulatorState",
    "FaultSettings",
    "GraphError",
    "MediaConfig",
    "MediaHost",
    "MediaLog",
    "MediaServer",
    "RateLimitConfig",
    "RecordedCall",
    "RejectedCall",
    "ScriptedAnswer",
    "Seen",
    "SendContext",
    "SendPipeline",
    "SimulatedUsersConfig",
    "TokenConfig",
    "WebhookConfig",
    "WindowConfig",
    "create_app",
    "make_server",
    "media_url",
    "run_emulator_process",
    "serve",
    "token_fingerprint",
]
