"""The `ig-outbound` command line: worker, gateway, demo, emulator, schema, send, status,
dlq, accounts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ig_outbound.cli.accounts import accounts_app
from ig_outbound.cli.health import health_app
from ig_outbound.cli.top import top

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.producers.dlq import DeadLetter
    from ig_outbound.producers.settings import ClientSettings
    from ig_outbound.worker.settings import Settings as WorkerConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ig-outbound: outbound Instagram Messaging API worker.",
)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _fail(data: dict[str, object]) -> typer.Exit:
    """Print an error as one JSON line (a log collector keeps it whole); the caller raises
    the returned exit (code 2)."""
    typer.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str))
    return typer.Exit(2)


def _settings_problems(exc: ValidationError | SettingsError) -> list[dict[str, str]]:
    """pydantic's problems by setting, without the input (it may be a token or a password)."""
    from ig_outbound.worker.arq_worker import settings_problems

    return settings_problems(exc)


def _client_settings() -> ClientSettings:
    """The producer side's settings, or one error line and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.producers.settings import get_client_settings

    try:
        return get_client_settings()
    except (ValidationError, SettingsError) as exc:
        raise _fail({"error": "invalid_settings", "problems": _settings_problems(exc)}) from None


class _RedisErrors:
    """Turns a failure to use Redis inside a command into one JSON line naming the Redis
    (password hidden) and exit 2, instead of a traceback."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        import redis

        from ig_outbound.producers.connection import RedisTargetError, redis_params
        from ig_outbound.producers.errors import OutboundError
        from ig_outbound.worker.supervisor import redis_problem

        if isinstance(exc, RedisTargetError):
            raise _fail({"error": "invalid_redis_url", "message": str(exc)}) from None
        if isinstance(exc, OutboundError):  # e.g. a Redis that may lose data, refused
            raise _fail({**exc.as_dict(), "redis": redis_params(self.settings).display}) from None
        if isinstance(exc, redis.RedisError | OSError):
            problem = redis_problem(exc)
            # The class only: redis-py's message could carry connection details.
            raise _fail(
                {
                    "error": problem.code,
                    "redis": redis_params(self.settings).display,
                    "message": problem.message,
                    "detail": problem.error_type,
                }
            ) from None


def _require_extra(extra: str, modules: tuple[str, ...]) -> None:
    """A web stack is an extra: say how to get it instead of a traceback."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        _print_json(
            {
                "error": "missing_extra",
                "message": f"{', '.join(missing)} missing: pip install 'ig-outbound[{extra}]'",
            }
        )
        raise typer.Exit(2)


def _require_emulator_extra() -> None:
    _require_extra("emulator", ("starlette", "uvicorn"))


@app.command()
def gateway() -> None:
    """Run the gateway: Instagram's webhooks in, and the HTTP intake for producers."""
    _require_extra("gateway", ("fastapi", "uvicorn"))
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.accounts.cipher import TokenCipher
    from ig_outbound.accounts.errors import AccountConfigError
    from ig_outbound.gateway.serve import run_gateway
    from ig_outbound.gateway.settings import get_gateway_settings
    from ig_outbound.producers.connection import connect_sync
    from ig_outbound.producers.redis_safety import inspect_sync, verdict

    try:
        settings = get_gateway_settings()
        TokenCipher.from_settings(settings.accounts)
    except (ValidationError, SettingsError) as exc:
        raise _fail({"error": "invalid_settings", "problems": _settings_problems(exc)}) from None
    except AccountConfigError as exc:
        raise _fail(exc.as_dict()) from None
    with _RedisErrors(settings):
        client = connect_sync(settings)
        try:
            client.ping()
            verdict(inspect_sync(client), allow_data_loss=settings.redis_allow_data_loss)
        finally:
            client.close()
    run_gateway(settings)


@app.command()
def worker(
    shard: Annotated[
        list[int] | None,
        typer.Option(
            help="A shard this worker serves (an index into IG_OUTBOUND_SHARDS; repeat for "
            "several: one process each). Default: IG_OUTBOUND_WORKER__SHARDS, else every shard."
        ),
    ] = None,
) -> None:
    """Run a worker under a supervisor that outlives Redis outages (ARQ's CLI works too)."""
    from ig_outbound.producers.errors import OutboundError

    if shard:
        # Read by the settings like any IG_OUTBOUND_* variable (and by child processes).
        os.environ["IG_OUTBOUND_WORKER__SHARDS"] = json.dumps(sorted(set(shard)))
    settings, target = _worker_settings()
    served = settings.served_shards()
    if len(served) > 1:
        from ig_outbound.cli.shard_workers import run_shard_workers

        raise typer.Exit(run_shard_workers(served, settings.metrics_port))
    _check_metrics_port(settings)
    # SIGHUP means "re-read the tokens" (installed by the worker's start-up); until then it
    # must not end the process (its default): the start-up reads the newest tokens anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from ig_outbound.worker import WorkerSettings
    from ig_outbound.worker.supervisor import RedisUnusableError, probe_redis, run_supervised
    from ig_outbound.worker.worker_settings import create_arq_pool

    _check_metrics_accounts(settings)

    try:
        run_supervised(
            WorkerSettings,
            probe=lambda: probe_redis(settings),
            pool=lambda: create_arq_pool(settings),
            alive=_heartbeat_file_toucher(settings),
        )
    except RedisUnusableError as exc:
        problem = exc.problem
        raise _fail(
            {
                "error": problem.code,
                "redis": target,
                "message": problem.message,
                "detail": problem.error_type,
            }
        ) from None
    except OutboundError as exc:  # e.g. a Redis that may lose data, refused at start
        raise _fail({**exc.as_dict(), "redis": target}) from None


def _worker_settings() -> tuple[WorkerConfig, str]:
    """The worker's settings, checked (tokens, encryption keys, Redis URL), and its Redis as
    shown in messages; or one error line and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.accounts.cipher import TokenCipher
    from ig_outbound.accounts.errors import AccountConfigError
    from ig_outbound.producers.connection import RedisTargetError, redis_params
    from ig_outbound.worker.errors import TokenConfigError
    from ig_outbound.worker.settings import get_settings
    from ig_outbound.worker.tokens import LocalTokens

    try:
        settings = get_settings()
        LocalTokens(settings.tokens, settings.tokens_file)
        TokenCipher.from_settings(settings.accounts)
        return settings, redis_params(settings).display
    except (ValidationError, SettingsError) as exc:
        raise _fail({"error": "invalid_settings", "problems": _settings_problems(exc)}) from None
    except (TokenConfigError, AccountConfigError) as exc:
        raise _fail(exc.as_dict()) from None
    except RedisTargetError as exc:
        raise _fail({"error": "invalid_redis_url", "message": str(exc)}) from None


def _check_metrics_port(settings: WorkerConfig) -> None:
    """A metrics port another process holds fails the start (one line), not the scrape."""
    import socket

    if settings.metrics_port is None:
        return
    addr = str(settings.metrics_addr)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the exporter binds (SO_REUSEADDR): a restarted worker's own scrapes in
        # TIME_WAIT must not look like another process holding the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((addr, settings.metrics_port))
        except OSError as exc:
            raise _fail(
                {
                    "error": "metrics_port_unavailable",
                    "setting": "metrics_port",
                    "message": f"cannot listen on {addr}:{settings.metrics_port}: {exc.strerror}",
                }
            ) from None


def _heartbeat_file_toucher(settings: WorkerConfig) -> Callable[[], None] | None:
    from ig_outbound.worker.heartbeat_file import touch

    path = settings.worker.heartbeat_file
    if path is None:
        return None

    def alive() -> None:
        with contextlib.suppress(OSError):  # a full disk must not stop the restarts
            touch(path)

    return alive


def _check_metrics_accounts(settings: WorkerConfig) -> None:
    """Per-account metrics only for accounts the fleet serves (a typo would count nothing)."""
    from redis.exceptions import RedisError

    from ig_outbound.producers.connection import connect_sync
    from ig_outbound.producers.keys import Keys
    from ig_outbound.worker.tokens import LocalTokens

    if not settings.metrics_accounts:
        return
    known = set(LocalTokens(settings.tokens, settings.tokens_file).tokens())
    try:
        r = connect_sync(settings)
        try:
            members: set[bytes] = r.smembers(Keys(settings.key_prefix).accounts)  # type: ignore[assignment]
            known |= {m.decode() for m in members}
        finally:
            r.close()
    except RedisError:
        return  # Redis away: the supervisor says so; the accounts are checked next start
    unknown = sorted(set(settings.metrics_accounts) - known)
    if unknown:
        raise _fail(
            {
                "error": "invalid_settings",
                "problems": [
                    {
                        "setting": "metrics_accounts",
                        "msg": f"unknown accounts (no token, not in the registry): {unknown}",
                    }
                ],
            }
        )


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8899,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="Emulator config (JSON).")] = None,
) -> None:
    """Run the local Graph API emulator."""
    _require_emulator_extra()
    from ig_outbound.emulator.__main__ import main as emulator_main

    args = ["--port", str(port), "--host", host]
    if config is not None:
        args += ["--config", str(config)]
    emulator_main(args)


@app.command()
def schema() -> None:
    """Print the intent's JSON Schema (for producers in other languages)."""
    from ig_outbound.producers.intent import intent_json_schema

    _print_json(intent_json_schema())


@app.command("enqueue-script")
def enqueue_script() -> None:
    """Print the enqueue Lua script (for producers in other languages: SCRIPT LOAD it)."""
    from ig_outbound.producers.enqueue import ENQUEUE_LUA

    typer.echo(ENQUEUE_LUA, nl=False)


@app.command()
def send(
    file: Annotated[
        Path | None,
        typer.Argument(help="Intent JSON file (an object or a list); '-' or none = stdin."),
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for outcomes (0 = don't).")] = 0.0,
) -> None:
    """Enqueue intents from JSON; prints one result per intent; exit 2 if any is refused."""
    from ig_outbound.producers.sharded import SyncShardedOutboundClient as SyncOutboundClient

    text = sys.stdin.read() if file is None or str(file) == "-" else file.read_text("utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _print_json({"error": "invalid_json", "message": str(exc)})
        raise typer.Exit(2) from None
    except RecursionError:  # nested deeper than Python's stack: never intents
        _print_json({"error": "invalid_json", "message": "nested too deeply"})
        raise typer.Exit(2) from None
    items = data if isinstance(data, list) else [data]
    refused = False
    settings = _client_settings()
    with _RedisErrors(settings), SyncOutboundClient.connect(settings) as client:
        results = client.enqueue_many(items)
        for result in results:
            row: dict[str, object] = {"key": result.key, "status": result.status}
            if result.error is not None:
                refused = True
                row.update(result.error.as_dict())
            elif wait > 0 and result.key is not None:
                try:
                    row["outcome"] = client.wait(result.key, wait).model_dump(mode="json")
                except TimeoutError:
                    row["outcome"] = None
            _print_json(row)
    if refused:
        raise typer.Exit(2)


@app.command()
def status(key: Annotated[str, typer.Argument(help="Idempotency key.")]) -> None:
    """Show the state and outcome of one intent (on whichever shard holds it)."""
    from ig_outbound.producers.sharded import SyncShardedOutboundClient as SyncOutboundClient

    settings = _client_settings()
    with _RedisErrors(settings), SyncOutboundClient.connect(settings) as client:
        outcome = client.outcome(key)
        state = client.state(key)
    if state is None:
        _print_json({"key": key, "state": None, "error": "unknown_key"})
        raise typer.Exit(1)
    _print_json(
        {
            "key": key,
            "state": state,
            "outcome": outcome.model_dump(mode="json") if outcome else None,
        }
    )


@app.command()
def demo(
    accounts: Annotated[int, typer.Option(help="Simulated IG accounts.")] = 3,
    conversations: Annotated[int, typer.Option(help="Conversations per account.")] = 8,
    rounds: Annotated[int, typer.Option(help="Times each conversation runs every kind.")] = 1,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    events: Annotated[
        int, typer.Option(help="The loop: events simulated users make in one burst.")
    ] = 1500,
    loop_accounts: Annotated[
        int, typer.Option(help="The loop: more IG accounts whose users write (plus --accounts).")
    ] = 20,
    old_users: Annotated[
        int,
        typer.Option(
            help="The loop: users who wrote 25 h ago (window closed), and as many 2 days ago "
            "(HUMAN_AGENT only)."
        ),
    ] = 20,
) -> None:
    """The whole product on embedded defaults: every kind sent, then the whole loop (users
    write, the gateway records the webhooks, the auto-responder answers, workers send,
    echoes come back); a summary; exit 1 if a promise did not hold."""
    _require_emulator_extra()
    _require_extra("gateway", ("fastapi", "uvicorn"))
    from ig_outbound.harness.demo import run_demo

    raise typer.Exit(
        run_demo(
            accounts=accounts,
            conversations=conversations,
            rounds=rounds,
            workers=workers,
            events=events,
            loop_accounts=loop_accounts,
            old_users=old_users,
        )
    )


# --- dlq: the dead-letter queue (producers/dlq.py) -------------------------------------------

dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Inspect, replay and purge dead letters. Prints JSON; exit 2 on any error.",
)
app.add_typer(dlq_app, name="dlq")
app.add_typer(accounts_app, name="accounts")
app.add_typer(health_app, name="health")
app.command()(top)

_DLQ_STATUSES = ("failed", "rejected", "expired", "unknown")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _dlq_error(error: str, message: str, **extra: object) -> typer.Exit:
    """Print a machine-readable error; the caller raises the returned exit (code 2)."""
    _print_json({"error": error, "message": message, **extra})
    return typer.Exit(2)


class _DlqErrors(_RedisErrors):
    """`_RedisErrors`, and a bad argument (a ValueError) as `invalid_argument`."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        from ig_outbound.producers.connection import RedisTargetError

        if isinstance(exc, ValueError) and not isinstance(exc, RedisTargetError):
            raise _dlq_error("invalid_argument", str(exc)) from None
        super().__exit__(exc_type, exc, tb)


_ShardOption = Annotated[
    int | None,
    typer.Option(help="Only this shard (an index into IG_OUTBOUND_SHARDS); default: every one."),
]


def _dlq_targets(
    settings: ClientSettings, shard: int | None
) -> list[tuple[int | None, ClientSettings]]:
    """(shard index, settings aimed at it) of each shard a dlq command reads: None as the
    index when there are no shards (the output then names none)."""
    from ig_outbound.producers.errors import ShardConfigError
    from ig_outbound.producers.shards import shard_settings

    count = len(settings.shard_urls())
    if not settings.shards and shard in (None, 0):
        return [(None, settings)]
    try:
        chosen = range(count) if shard is None else [shard]
        return [(i, shard_settings(settings, i)) for i in chosen]
    except ShardConfigError as exc:
        raise _dlq_error(exc.code, str(exc)) from None


def _tagged(letter: DeadLetter, shard: int | None) -> dict[str, Any]:
    row = letter.as_dict()
    return row if shard is None else {**row, "shard": shard}


# No dead letter is older than this: a longer age is a typo, not a choice (and a timedelta
# cannot hold 99999999999999 weeks).
_MAX_AGE_S = 100 * 365 * 86400
_MAX_AGE_DIGITS = 12


def _dlq_duration(text: str) -> float:
    """`7d`, `12h`, `1d12h`, `30m`, `90s`, `2w` -> seconds (at most 100 years)."""
    import re

    spec = text.strip()
    if not re.fullmatch(r"(?:\d+[smhdw])+", spec):
        raise _dlq_error(
            "invalid_duration", f"{spec[:40]!r} is not a duration like 7d, 12h, 1d12h, 30m or 90s"
        )
    parts = re.findall(r"(\d+)([smhdw])", spec)
    # int() refuses thousands of digits; a dozen is already far past the limit.
    too_long = any(len(n) > _MAX_AGE_DIGITS for n, _ in parts)
    seconds = 0 if too_long else sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts)
    if too_long or seconds > _MAX_AGE_S:
        raise _dlq_error("invalid_duration", f"{spec[:40]!r} is longer than 100 years")
    return float(seconds)


@dlq_app.command("list")
def dlq_list(
    status: Annotated[
        str | None, typer.Option(help="Only this status: failed, rejected, expired, unknown.")
    ] = None,
    count: Annotated[int, typer.Option(help="At most this many entries (1-10000).")] = 50,
    after: Annotated[
        str | None, typer.Option(help="Entries older than this entry id (a page's `next`).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only entries of this idempotency key.")] = None,
    shard: _ShardOption = None,
) -> None:
    """List dead letters, newest first (of every shard: each entry names its `shard`)."""
    from ig_outbound.producers.dlq import DeadLetters, entry_order

    if status is not None and status not in _DLQ_STATUSES:
        raise _dlq_error("invalid_status", f"status must be one of {', '.join(_DLQ_STATUSES)}")
    if not 1 <= count <= 10_000:
        raise _dlq_error("invalid_count", "count must be between 1 and 10000")
    settings = _client_settings()
    found: list[tuple[DeadLetter, int | None]] = []
    for index, target in _dlq_targets(settings, shard):
        with _DlqErrors(target), DeadLetters.connect(settings=target) as dlq:
            found += [
                (d, index) for d in dlq.list(count=count, status=status, after=after, key=key)
            ]
    # Newest first over every shard (stream ids are times), `count` at most.
    found = sorted(found, key=lambda f: entry_order(f[0].entry_id), reverse=True)[:count]
    _print_json(
        {
            "entries": [_tagged(letter, index) for letter, index in found],
            "count": len(found),
            "next": found[-1][0].entry_id if len(found) == count else None,
        }
    )


@dlq_app.command("show")
def dlq_show(
    entry_id: Annotated[str, typer.Argument(help="Stream entry id.")], shard: _ShardOption = None
) -> None:
    """Show one dead letter: its intent, outcome and replay (the first shard that has it)."""
    from ig_outbound.producers.dlq import DeadLetters

    settings = _client_settings()
    for index, target in _dlq_targets(settings, shard):
        with _DlqErrors(target), DeadLetters.connect(settings=target) as dlq:
            letter = dlq.show(entry_id)
        if letter is not None:
            _print_json(_tagged(letter, index))
            return
    raise _dlq_error("unknown_entry", "no such dead-letter entry", entry_id=entry_id)


def _one_shard_for_ids(settings: ClientSettings, ids: list[str] | None, shard: int | None) -> None:
    """Entry ids are a stream's own: with shards they need the shard they belong to."""
    if ids and settings.shards and len(settings.shards) > 1 and shard is None:
        raise _dlq_error(
            "shard_required", "entry ids belong to one shard's stream: give --shard (see list)"
        )


@dlq_app.command("replay")
def dlq_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Stream entry ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every entry.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check only; enqueue nothing.")
    ] = False,
    shard: _ShardOption = None,
) -> None:
    """Re-enqueue dead-lettered intents under derived keys; every check runs again. An
    intent is replayed on its own shard (its account's)."""
    from ig_outbound.producers.dlq import ALL, DeadLetters

    if bool(entry_ids) == all_:
        raise _dlq_error("invalid_arguments", "give entry ids or --all (not both)")
    settings = _client_settings()
    _one_shard_for_ids(settings, entry_ids, shard)
    rows: list[dict[str, Any]] = []
    failed = False
    for index, target in _dlq_targets(settings, shard):
        with _DlqErrors(target), DeadLetters.connect(settings=target) as dlq:
            results = dlq.replay(ALL if all_ else (entry_ids or []), dry_run=dry_run)
        failed |= any(not r.ok for r in results)
        rows += [r.as_dict() if index is None else {**r.as_dict(), "shard": index} for r in results]
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["status"]] = totals.get(row["status"], 0) + 1
    _print_json({"dry_run": dry_run, "totals": totals, "results": rows})
    if failed:
        raise typer.Exit(2)


@dlq_app.command("purge")
def dlq_purge(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Stream entry ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Remove entries older than e.g. 7d.")
    ] = None,
    shard: _ShardOption = None,
) -> None:
    """Remove dead letters (by id, all, or by age) and their replay bookkeeping."""
    from datetime import timedelta

    from ig_outbound.producers.dlq import ALL, DeadLetters

    if sum((bool(entry_ids), all_, older_than is not None)) != 1:
        raise _dlq_error("invalid_arguments", "give entry ids, --all or --older-than (one)")
    age = None if older_than is None else timedelta(seconds=_dlq_duration(older_than))
    settings = _client_settings()
    _one_shard_for_ids(settings, entry_ids, shard)
    purged = 0
    for _, target in _dlq_targets(settings, shard):
        with _DlqErrors(target), DeadLetters.connect(settings=target) as dlq:
            if age is not None:
                purged += dlq.purge(older_than=age)
            else:
                purged += dlq.purge(ALL if all_ else (entry_ids or []))
    _print_json({"purged": purged})


def main() -> None:
    app()


if __name__ == "__main__":
    main()
