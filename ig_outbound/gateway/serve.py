"""Running the gateway: one uvicorn server on the gateway's host and port."""

from __future__ import annotations

import uvicorn

from ig_outbound.gateway.app import create_app
from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.logs import configure_logging
from ig_outbound.producers.connection import connect_async


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    """A uvicorn server for the gateway (its Redis client made by the one connection story);
    `limit_concurrency` answers 503 beyond the gateway's capacity instead of queueing."""
    section = settings.gateway
    secrets = [s.get_secret_value() for s in [*section.app_secrets, *section.intake_tokens]]
    if section.verify_token is not None:
        secrets.append(section.verify_token.get_secret_value())
    configure_logging(settings.log_level, settings.log_format, secrets=secrets)
    # One client per shard; the first is the gateway's home (its webhook stream).
    shards = [connect_async(settings, url) for url in settings.shard_urls()]
    app = create_app(settings, shards[0], shards)
    config = uvicorn.Config(
        app,
        host=section.host,
        port=section.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        limit_concurrency=section.max_concurrency,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def run_gateway(settings: GatewaySettings) -> None:
    build_server(settings).run()
