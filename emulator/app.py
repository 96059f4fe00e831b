"""The ASGI app: Graph's messaging route, its token, account and subscription routes
(``graph_accounts.py``) and the ``/_emulator`` control routes.

Its lifespan runs the background tasks (webhook delivery, simulated users at their steady
rate) and, when ``config.media.enabled``, the media host on a port of its own. Without a
lifespan (``httpx.ASGITransport``) webhook delivery starts on the first webhook and no media
host runs; ``async with app.router.lifespan_context(app)`` runs and stops them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.config import EmulatorConfig
from ig_outbound.emulator.control_api import PREFIX, build_routes
from ig_outbound.emulator.control_tokens import build_token_routes
from ig_outbound.emulator.control_world import build_world_routes
from ig_outbound.emulator.graph_accounts import build_graph_account_routes
from ig_outbound.emulator.media_server import media_host_running
from ig_outbound.emulator.pipeline import DEFAULT_CHECKS, Check, SendPipeline
from ig_outbound.emulator.simulated_users import UserSimulator
from ig_outbound.emulator.state import EmulatorState


def create_app(
    config: EmulatorConfig | None = None,
    *,
    checks: Sequence[Check] = DEFAULT_CHECKS,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build an emulator app; its state is reachable as ``app.state.emulator``.

    ``webhook_transport``: deliver webhooks through it instead of real HTTP (in-process tests
    hand an ``httpx.ASGITransport`` of their receiver).
    """
    state = EmulatorState(config or EmulatorConfig(), webhook_transport)
    pipeline = SendPipeline(state, checks)
    simulator = UserSimulator(state)

    async def send(request: Request) -> Response:
        return await pipeline.handle(request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The media host first: it must serve (and Graph know where) before Graph answers.
        async with media_host_running(state.media_config, state.media):
            state.webhooks.start()
            simulator.start()
            try:
                yield
            finally:
                await simulator.stop()
                await state.webhooks.stop()

    routes = [
        # The hot route first: benchmarks hit it thousands of times per second.
        Route("/{version}/{node}/messages", send, methods=["POST"]),
        *build_routes(state),
        *build_world_routes(state, simulator),
        *build_token_routes(state),
        # Last: its ``/{version}/{node}`` read would otherwise match control paths.
        *build_graph_account_routes(state),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.state.pipeline = pipeline
    app.state.simulator = simulator
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    # Outside the control prefix answer like Graph does for paths it does not know.
    if request.url.path.startswith(PREFIX):
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return JSONResponse({"detail": "not found"}, status_code=status)
    return ge.unknown_path(request.url.path).to_response()
