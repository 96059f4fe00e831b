"""The `ig-outbound` command line: worker, demo, emulator, schema, send, status."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="ig-outbound: outbound Instagram Messaging API worker.",
)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _require_emulator_extra() -> None:
    """The emulator's web stack is an extra: say how to get it instead of a traceback."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        _print_json(
            {
                "error": "missing_extra",
                "message": f"{', '.join(missing)} missing: pip install 'ig-outbound[emulator]'",
            }
        )
        raise typer.Exit(2)


@app.command()
def worker() -> None:
    """Run a worker under a supervisor that outlives Redis outages (ARQ's CLI works too)."""
    from pydantic import ValidationError

    from ig_outbound.worker.errors import TokenConfigError
    from ig_outbound.worker.settings import get_settings
    from ig_outbound.worker.tokens import TokenStore

    try:
        TokenStore.from_settings(get_settings())
    except ValidationError as exc:
        problems = [
            {"setting": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        _print_json({"error": "invalid_settings", "problems": problems})
        raise typer.Exit(2) from None
    except TokenConfigError as exc:
        _print_json({"error": "invalid_tokens", "message": str(exc)})
        raise typer.Exit(2) from None

    from ig_outbound.worker import WorkerSettings
    from ig_outbound.worker.supervisor import run_supervised

    run_supervised(WorkerSettings)


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
    from ig_outbound.producers.enqueue import SyncOutboundClient

    text = sys.stdin.read() if file is None or str(file) == "-" else file.read_text("utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _print_json({"error": "invalid_json", "message": str(exc)})
        raise typer.Exit(2) from None
    items = data if isinstance(data, list) else [data]
    refused = False
    with SyncOutboundClient.connect() as client:
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
    """Show the state and outcome of one intent."""
    from ig_outbound.producers.enqueue import SyncOutboundClient

    with SyncOutboundClient.connect() as client:
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
) -> None:
    """The whole product on embedded defaults: emulator, workers, simulated users, summary."""
    _require_emulator_extra()
    from ig_outbound.harness.demo import run_demo

    raise typer.Exit(
        run_demo(accounts=accounts, conversations=conversations, rounds=rounds, workers=workers)
    )


# --- dlq: the dead-letter queue (producers/dlq.py) -------------------------------------------

dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Inspect, replay and purge dead letters. Prints JSON; exit 2 on any error.",
)
app.add_typer(dlq_app, name="dlq")

_DLQ_STATUSES = ("failed", "rejected", "expired", "unknown")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _dlq_error(error: str, message: str, **extra: object) -> typer.Exit:
    """Print a machine-readable error; the caller raises the returned exit (code 2)."""
    _print_json({"error": error, "message": message, **extra})
    return typer.Exit(2)


class _DlqErrors:
    """Turns a Redis or argument error inside a `dlq` command into JSON and exit 2."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        import redis

        if isinstance(exc, redis.RedisError):
            # The class only: a message could carry connection details.
            raise _dlq_error("redis_error", type(exc).__name__) from None
        if isinstance(exc, ValueError):
            raise _dlq_error("invalid_argument", str(exc)) from None


def _dlq_duration(text: str) -> float:
    """`7d`, `12h`, `1d12h`, `30m`, `90s`, `2w` -> seconds."""
    import re

    if not re.fullmatch(r"(?:\d+[smhdw])+", text.strip()):
        raise _dlq_error(
            "invalid_duration", f"{text!r} is not a duration like 7d, 12h, 1d12h, 30m or 90s"
        )
    return float(
        sum(
            int(n) * _DURATION_UNITS[unit]
            for n, unit in re.findall(r"(\d+)([smhdw])", text.strip())
        )
    )


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
) -> None:
    """List dead letters, newest first."""
    from ig_outbound.producers.dlq import DeadLetters

    if status is not None and status not in _DLQ_STATUSES:
        raise _dlq_error("invalid_status", f"status must be one of {', '.join(_DLQ_STATUSES)}")
    if not 1 <= count <= 10_000:
        raise _dlq_error("invalid_count", "count must be between 1 and 10000")
    with _DlqErrors(), DeadLetters.connect() as dlq:
        letters = dlq.list(count=count, status=status, after=after, key=key)
    _print_json(
        {
            "entries": [letter.as_dict() for letter in letters],
            "count": len(letters),
            "next": letters[-1].entry_id if len(letters) == count else None,
        }
    )


@dlq_app.command("show")
def dlq_show(entry_id: Annotated[str, typer.Argument(help="Stream entry id.")]) -> None:
    """Show one dead letter: its intent, outcome and replay."""
    from ig_outbound.producers.dlq import DeadLetters

    with _DlqErrors(), DeadLetters.connect() as dlq:
        letter = dlq.show(entry_id)
    if letter is None:
        raise _dlq_error("unknown_entry", "no such dead-letter entry", entry_id=entry_id)
    _print_json(letter.as_dict())


@dlq_app.command("replay")
def dlq_replay(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Stream entry ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every entry.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check only; enqueue nothing.")
    ] = False,
) -> None:
    """Re-enqueue dead-lettered intents under derived keys; every check runs again."""
    from ig_outbound.producers.dlq import ALL, DeadLetters

    if bool(entry_ids) == all_:
        raise _dlq_error("invalid_arguments", "give entry ids or --all (not both)")
    with _DlqErrors(), DeadLetters.connect() as dlq:
        results = dlq.replay(ALL if all_ else (entry_ids or []), dry_run=dry_run)
    totals: dict[str, int] = {}
    for result in results:
        totals[result.status] = totals.get(result.status, 0) + 1
    _print_json({"dry_run": dry_run, "totals": totals, "results": [r.as_dict() for r in results]})
    if any(not r.ok for r in results):
        raise typer.Exit(2)


@dlq_app.command("purge")
def dlq_purge(
    entry_ids: Annotated[list[str] | None, typer.Argument(help="Stream entry ids.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Remove entries older than e.g. 7d.")
    ] = None,
) -> None:
    """Remove dead letters (by id, all, or by age) and their replay bookkeeping."""
    from datetime import timedelta

    from ig_outbound.producers.dlq import ALL, DeadLetters

    if sum((bool(entry_ids), all_, older_than is not None)) != 1:
        raise _dlq_error("invalid_arguments", "give entry ids, --all or --older-than (one)")
    age = None if older_than is None else timedelta(seconds=_dlq_duration(older_than))
    with _DlqErrors(), DeadLetters.connect() as dlq:
        if age is not None:
            purged = dlq.purge(older_than=age)
        else:
            purged = dlq.purge(ALL if all_ else (entry_ids or []))
    _print_json({"purged": purged})


def main() -> None:
    app()


if __name__ == "__main__":
    main()
