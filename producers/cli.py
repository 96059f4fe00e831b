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


@app.command()
def worker() -> None:
    """Run a worker (same as `arq worker.WorkerSettings`)."""
    from arq import run_worker

    from worker import WorkerSettings

    run_worker(WorkerSettings)


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8899,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="Emulator config (JSON).")] = None,
) -> None:
    """Run the local Graph API emulator."""
    from emulator.__main__ import main as emulator_main

    args = ["--port", str(port), "--host", host]
    if config is not None:
        args += ["--config", str(config)]
    emulator_main(args)


@app.command()
def schema() -> None:
    """Print the intent's JSON Schema (for producers in other languages)."""
    from producers.intent import intent_json_schema

    _print_json(intent_json_schema())


@app.command()
def send(
    file: Annotated[
        Path | None,
        typer.Argument(help="Intent JSON file (an object or a list); '-' or none = stdin."),
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for outcomes (0 = don't).")] = 0.0,
) -> None:
    """Enqueue intents from JSON; prints one result per intent; exit 2 if any is refused."""
    from producers.enqueue import SyncOutboundClient

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
    from producers.enqueue import SyncOutboundClient

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
    from producers.demo import run_demo

    raise typer.Exit(
        run_demo(accounts=accounts, conversations=conversations, rounds=rounds, workers=workers)
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
