"""ARQ `WorkerSettings`, for `arq ig_outbound.worker.WorkerSettings` and `ig-outbound worker`.

ARQ reads the class `__dict__`, so every attribute is a plain value computed from our one
`Settings` at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from arq.connections import RedisSettings
from arq.worker import func
from prometheus_client import start_http_server
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ig_outbound.accounts.registry import AccountRegistry
from ig_outbound.graph.admin import GraphAdmin
from ig_outbound.logs import configure_logging
from ig_outbound.producers.connection import async_redis, redis_params
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_safety import inspect_async, verdict
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.wire import SEND_JOB_NAME, dumps
from ig_outbound.worker import metrics
from ig_outbound.worker.arq_worker import load_settings
from ig_outbound.worker.housekeeping import Housekeeping
from ig_outbound.worker.job import send_intent
from ig_outbound.worker.job_guard import load_job
from ig_outbound.worker.prefetch import PrefetchingArqRedis
from ig_outbound.worker.refresher import Refresher
from ig_outbound.worker.services import Services
from ig_outbound.worker.settings import Settings, get_settings
from ig_outbound.worker.tokens import TokenBook

log = structlog.get_logger("ig_outbound.worker")

# ARQ's max_tries counts restarts and deferrals too (arq-notes A.3); our own attempt budget
# (settings.retry.max_attempts) and the intent's deadline decide instead.
ARQ_MAX_TRIES = 1_000_000


def redis_settings(settings: Settings) -> RedisSettings:
    """ARQ Redis settings from the one parser both sides use (producers/connection.py; ARQ's
    own DSN parser drops percent-encoded passwords and `rediss://` options), retrying
    instead of dying when Redis blips (arq#386, #435)."""
    p = redis_params(settings)
    rs = RedisSettings(
        host=list(p.sentinels) if p.sentinels else p.host,
        port=p.port,
        unix_socket_path=p.unix_path,
        database=p.db,
        username=p.username,
        password=p.password,
        ssl=p.tls,
        ssl_keyfile=p.key_file,
        ssl_certfile=p.cert_file,
        ssl_cert_reqs=p.cert_reqs,
        ssl_ca_certs=p.ca_file,
        ssl_check_hostname=p.check_hostname,
        conn_timeout=max(int(p.connect_timeout_s), 1),
        sentinel=bool(p.sentinels),
        sentinel_master=p.sentinel_master,
    )
    rs.conn_retries = 30
    rs.conn_retry_delay = 1
    rs.retry_on_timeout = True
    # OSError: a refused connect reaches redis-py's retry as ConnectionRefusedError.
    rs.retry_on_error = [RedisConnectionError, RedisTimeoutError, OSError]
    rs.retry = RedisRetry(ExponentialBackoff(cap=2.0, base=0.05), retries=20)
    return rs


def create_arq_pool(settings: Settings) -> PrefetchingArqRedis:
    """ARQ's Redis client, built by the one connection story (producers/connection.py): TLS
    files, Sentinel, timeouts and the retry policy hold through the sentinels too, which
    ARQ's own `create_pool` drops there. `ig-outbound worker` hands it to the worker."""
    rs = redis_settings(settings)
    pool = async_redis(
        redis_params(settings),
        redis_class=PrefetchingArqRedis,
        retry=rs.retry,
        retry_on_error=rs.retry_on_error,
        retry_on_timeout=True,
    )
    assert isinstance(pool, PrefetchingArqRedis)
    pool.job_serializer = dumps
    pool.job_deserializer = load_job
    pool.default_queue_name = Keys(settings.key_prefix).queue
    return pool


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    tokens = TokenBook.from_settings(
        settings, AccountRegistry(ctx["redis"], Keys(settings.key_prefix))
    )
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=tokens.secrets(),
        on_drop=metrics.LOG_LINES_DROPPED.inc,
    )
    services = Services.build(settings, ctx["redis"], tokens)
    ctx["igo"] = services
    note = verdict(
        await inspect_async(services.redis), allow_data_loss=settings.redis_allow_data_loss
    )  # raises (the worker does not start) for a Redis that can lose intents
    if note:
        log.warning("redis_data_safety", note=note)
    await services.clock.sync()
    services.clock.install_in_arq()
    await tokens.start()
    await _publish(services)
    _publish_limits(settings)
    metrics.TRANSIT_ALLOWANCE_SECONDS.set(services.limiter.transit_ms / 1000)
    refresher = Refresher(
        tokens, GraphAdmin(settings.graph), account_pause_s=settings.retry.account_pause_s
    )
    ctx["igo_housekeeping"] = housekeeping = Housekeeping(
        services, lambda: _publish(services), refresher
    )
    housekeeping.start()
    _reload_on_sighup(housekeeping)
    if settings.metrics_port is not None:
        try:
            start_http_server(settings.metrics_port, addr=str(settings.metrics_addr))
        except OSError as exc:  # e.g. a second worker on one host: keep sending regardless
            log.error(
                "metrics_port_unavailable",
                addr=str(settings.metrics_addr),
                port=settings.metrics_port,
                error=str(exc),
            )
    log.info("worker_started", accounts=len(tokens.accounts()), queue=services.keys.queue)


def _publish_limits(settings: Settings) -> None:
    """Meta's limits as configured, for dashboards to draw the sends against."""
    rate = settings.rate
    metrics.RATE_LIMIT.labels(rate_class="light", window="1s").set(rate.light_per_s)
    metrics.RATE_LIMIT.labels(rate_class="media", window="1s").set(rate.media_per_s)
    metrics.RATE_LIMIT.labels(rate_class="private_reply", window="1h").set(
        rate.private_replies_per_h
    )


def _reload_on_sighup(housekeeping: Housekeeping) -> None:
    """SIGHUP re-reads the tokens file and the registry at once (no restart, no send lost)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, housekeeping.reload_tokens)


async def _publish(services: Services) -> None:
    """What producers need from the fleet, (re)written: the rate spacing, the window policy,
    the local accounts (fingerprints, never tokens: producers refuse intents for accounts
    nobody serves); and
    Redis's clock measured again."""
    await services.limiter.publish()
    window = services.settings.window
    policy = {
        "standard_ms": window.standard_s * 1000,
        "human_agent_ms": window.human_agent_s * 1000,
        "private_reply_ms": window.private_reply_s * 1000,
        "margin_ms": int(window.margin_s * 1000),
        "unknown": window.unknown,
    }
    await resolve(services.redis.hset(services.keys.policy, mapping=policy))
    await services.tokens.sync_local()  # (`accounts` again, should Redis have lost it)
    await services.clock.sync()


async def shutdown(ctx: dict[str, Any]) -> None:
    # An exception escaping an ARQ hook kills the worker (arq-notes A.3): never let one out.
    try:
        housekeeping: Housekeeping | None = ctx.get("igo_housekeeping")
        if housekeeping is not None:
            await housekeeping.stop()
        services: Services | None = ctx.get("igo")
        if housekeeping is not None:
            await housekeeping.refresher.aclose()
        if services is not None:
            await services.graph.aclose()
            await services.media.aclose()
        log.info("worker_stopped")
    except Exception as exc:
        log.warning("shutdown_cleanup_failed", error_type=type(exc).__name__)


def build_worker_settings(settings: Settings) -> type:
    """A WorkerSettings class for these settings (tests and the demo build their own)."""
    tuning = settings.worker
    attrs: dict[str, Any] = {
        "functions": [
            func(
                send_intent,
                name=SEND_JOB_NAME,
                timeout=tuning.job_timeout_s,
                max_tries=ARQ_MAX_TRIES,
            )
        ],
        "queue_name": Keys(settings.key_prefix).queue,
        "redis_settings": redis_settings(settings),
        "job_serializer": dumps,
        "job_deserializer": load_job,
        "max_jobs": tuning.max_jobs,
        "poll_delay": tuning.poll_delay_s,
        "queue_read_limit": tuning.queue_read_limit,
        "job_timeout": tuning.job_timeout_s,
        "max_tries": ARQ_MAX_TRIES,
        "keep_result": 0,  # our outcomes live in the idempotency record, not ARQ results
        "health_check_interval": tuning.health_check_interval_s,
        "job_completion_wait": tuning.drain_timeout_s,
        "on_startup": startup,
        "on_shutdown": shutdown,
    }
    return type("WorkerSettings", (), attrs)


# `load_settings`: a bad environment fails the import naming each setting, never its value
# (ARQ's CLI prints the import error; a malformed IG_OUTBOUND_TOKENS must not show there).
WorkerSettings = build_worker_settings(load_settings())
