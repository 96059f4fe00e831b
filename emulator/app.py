"""The ASGI app: Graph's messaging route plus the ``/_emulator`` control routes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.config import EmulatorConfig
from ig_outbound.emulator.control_api import PREFIX, build_routes
from ig_outbound.emulator.pipeline import DEFAULT_CHECKS, Check, SendPipeline
from ig_outbound.emulator.state import EmulatorState


def create_app(
    config: EmulatorConfig | None = None, *, checks: Sequence[Check] = DEFAULT_CHECKS
) -> Starlette:
    """Build an emulator app; its state is reachable as ``app.state.emulator``."""
    state = EmulatorState(config or EmulatorConfig())
    pipeline = SendPipeline(state, checks)

    async def send(request: Request) -> Response:
        return await pipeline.handle(request)

    routes = [
        # The hot route first: benchmarks hit it thousands of times per second.
        Route("/{version}/{node}/messages", send, methods=["POST"]),
        *build_routes(state),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app.state.emulator = state
    app.state.pipeline = pipeline
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    # Outside the control prefix answer like Graph does for paths it does not know.
    if request.url.path.startswith(PREFIX):
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return JSONResponse({"detail": "not found"}, status_code=status)
    return ge.unknown_path(request.url.path).to_response()
