"""`ig-outbound health live|ready`: exec probes for a worker (Kubernetes, compose).

`live` reads only the heartbeat file the worker's event loop touches
(`IG_OUTBOUND_WORKER__HEARTBEAT_FILE`): it fails when the loop is wedged or the process is
gone, never because Redis blipped (every pod would restart at once, for nothing). `ready`
also asks Redis for a PING: an unready worker is only taken out of rotation. One JSON line
either way; exit 0 healthy, 1 not, 2 for bad settings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ig_outbound.worker.settings import Settings as WorkerConfig

health_app = typer.Typer(
    help="Exec probes for a worker: live (its event loop turns), ready (and Redis answers).",
    no_args_is_help=True,
)

MaxAge = Annotated[
    float | None,
    typer.Option(
        "--max-age",
        help="Seconds the heartbeat file may be old (default: 6 heartbeat intervals, at least 30).",
    ),
]


def _answer(ok: bool, **facts: object) -> typer.Exit:
    typer.echo(json.dumps({"ok": ok, **facts}, separators=(",", ":"), default=str))
    return typer.Exit(0 if ok else 1)


def _settings() -> WorkerConfig:
    """The worker's settings, or one error line and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.worker.arq_worker import settings_problems
    from ig_outbound.worker.settings import get_settings

    try:
        return get_settings()
    except (ValidationError, SettingsError) as exc:
        problems = settings_problems(exc)
        typer.echo(json.dumps({"error": "invalid_settings", "problems": problems}))
        raise typer.Exit(2) from None


def _live_facts(max_age: float | None) -> tuple[bool, dict[str, object]]:
    from ig_outbound.worker.heartbeat_file import age_s

    tuning = _settings().worker
    path = tuning.heartbeat_file
    if path is None:
        return False, {"error": "no_heartbeat_file", "setting": "worker.heartbeat_file"}
    limit = max_age if max_age is not None else max(tuning.heartbeat_interval_s * 6, 30.0)
    age = age_s(path)
    if age is None:
        return False, {"error": "no_heartbeat", "file": path}
    facts: dict[str, object] = {"heartbeat_age_s": round(age, 3), "max_age_s": limit}
    return age <= limit, facts


@health_app.command()
def live(max_age: MaxAge = None) -> None:
    """Exit 0 while the worker's heartbeat file is fresh (no Redis involved)."""
    ok, facts = _live_facts(max_age)
    raise _answer(ok, **facts)


@health_app.command()
def ready(max_age: MaxAge = None) -> None:
    """Exit 0 while the worker is live and Redis answers a PING (the worker's Redis
    settings: TLS, ACL, Sentinel and connect timeout; with shards, each shard it serves)."""
    from redis.exceptions import RedisError

    from ig_outbound.producers.connection import connect_sync
    from ig_outbound.producers.shards import shard_settings

    ok, facts = _live_facts(max_age)
    if not ok:
        raise _answer(False, **facts)
    settings = _settings()
    try:
        for shard in settings.served_shards():
            client = connect_sync(shard_settings(settings, shard))
            try:
                client.ping()
            finally:
                client.close()
    except (RedisError, OSError) as exc:
        raise _answer(
            False, **facts, error="redis_unavailable", detail=type(exc).__name__
        ) from None
    raise _answer(True, **facts, redis="ok")
