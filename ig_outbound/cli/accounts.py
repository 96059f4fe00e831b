"""`ig-outbound accounts ...`: onboard, inspect, refresh and remove accounts at run time.

A token is never an argument (it would show in `ps` and shell history): it comes from a
file, standard input or a named environment variable. Nothing printed ever holds one.
Output is JSON (`list` also has a table); errors are one JSON line and exit 2.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ig_outbound.accounts.admin import AccountAdmin
    from ig_outbound.accounts.settings import AccountToolSettings
    from ig_outbound.accounts.views import AccountView

_T = TypeVar("_T")

accounts_app = typer.Typer(
    no_args_is_help=True,
    help="Accounts: add (check, store encrypted, subscribe), list, show, refresh, remove.",
)


def _settings() -> AccountToolSettings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ig_outbound.accounts.settings import AccountToolSettings
    from ig_outbound.cli.app import _fail, _settings_problems

    try:
        return AccountToolSettings()
    except (ValidationError, SettingsError) as exc:
        raise _fail({"error": "invalid_settings", "problems": _settings_problems(exc)}) from None


def _run(action: Callable[[AccountAdmin], Awaitable[_T]]) -> _T:
    """Run one action on an `AccountAdmin`; account errors become one JSON line, exit 2."""
    from ig_outbound.accounts.admin import open_admin
    from ig_outbound.accounts.errors import AccountError
    from ig_outbound.cli.app import _fail, _RedisErrors

    settings = _settings()

    async def go() -> _T:
        async with open_admin(settings) as admin:
            return await action(admin)

    try:
        with _RedisErrors(settings):
            return asyncio.run(go())
    except AccountError as exc:
        raise _fail(exc.as_dict()) from None


def _view_json(view: AccountView) -> dict[str, Any]:
    return view.model_dump(mode="json", exclude_none=True)


def _read_token(file: Path | None, stdin: bool, env: str | None) -> Any:
    from pydantic import SecretStr

    from ig_outbound.accounts.cipher import read_token_file
    from ig_outbound.accounts.errors import AccountConfigError
    from ig_outbound.cli.app import _fail

    given = [file is not None, stdin, env is not None]
    if sum(given) != 1:
        raise _fail(
            {
                "error": "token_source",
                "message": "give the token with exactly one of --token-file, --token-stdin, "
                "--token-env",
            }
        )
    try:
        if file is not None:
            return read_token_file(file)
    except AccountConfigError as exc:
        raise _fail(exc.as_dict()) from None
    text = sys.stdin.read() if stdin else os.environ.get(env or "", "")
    source = "standard input" if stdin else f"the environment variable {env}"
    if not text.strip():
        raise _fail({"error": "token_source", "message": f"no token on {source}"})
    if len(text.split()) != 1:
        raise _fail({"error": "token_source", "message": f"{source} must hold one token"})
    return SecretStr(text.strip())


@accounts_app.command("add")
def accounts_add(
    token_file: Annotated[
        Path | None, typer.Option(help="A file holding the token (and nothing else).")
    ] = None,
    token_stdin: Annotated[bool, typer.Option(help="Read the token from standard input.")] = False,
    token_env: Annotated[
        str | None, typer.Option(help="Name of an environment variable holding the token.")
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option(help="The IG account id the token must belong to (checked with GET /me)."),
    ] = None,
    expires_in: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Seconds the token is valid for, as the login flow said (else learned by "
            "refreshing it now, or 60 days at most for a token under a day old).",
        ),
    ] = None,
    subscribe: Annotated[
        bool, typer.Option(help="Subscribe the account to the webhook fields.")
    ] = True,
) -> None:
    """Check a long-lived token with Graph, store it encrypted, subscribe its account to the
    webhook fields. Producers can enqueue for it at once. Exit 3: stored, but the
    subscription failed (see `subscribe_error`; retry with `accounts subscribe`)."""
    from ig_outbound.cli.app import _print_json

    token = _read_token(token_file, token_stdin, token_env)

    async def add(admin: AccountAdmin) -> Any:
        return await admin.add(
            token, account_id=account_id, expires_in_s=expires_in, subscribe=subscribe
        )

    result = _run(add)
    _print_json(
        {
            "outcome": result.outcome,
            "refreshed": result.refreshed,
            "subscribe_error": result.subscribe_error,
            "account": _view_json(result.account),
        }
    )
    if result.subscribe_error is not None:
        raise typer.Exit(3)


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Every account: state, pause, token age and expiry, last refresh, last error."""
    from ig_outbound.cli.app import _print_json

    async def list_all(admin: AccountAdmin) -> list[AccountView]:
        return await admin.list()

    views = _run(list_all)
    if as_json:
        _print_json([_view_json(v) for v in views])
        return
    _print_table(views)


def _print_table(views: list[AccountView]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("account", "username", "source", "state", "paused", "token age", "expires"):
        table.add_column(column)
    table.add_column("last refresh")
    table.add_column("last error", overflow="fold")
    for v in views:
        cells = [
            v.account_id,
            v.username or "",
            v.source or "",
            v.state,
            (v.pause_reason or "yes") if v.paused else "",
            _days(v.token_age_s),
            (_days(v.expires_in_s) + (" (est.)" if v.expiry_estimated else ""))
            if v.expires_in_s is not None
            else "unknown",
            v.last_refresh_result or "",
            v.last_error or "",
        ]
        table.add_row(*(escape(cell) for cell in cells))  # text, never rich markup
    Console(width=160).print(table)


def _days(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if abs(seconds) >= 86400:
        return f"{seconds / 86400:.1f}d"
    return f"{seconds / 3600:.1f}h"


@accounts_app.command("show")
def accounts_show(account_id: Annotated[str, typer.Argument(help="IG account id.")]) -> None:
    """One account (never its token)."""
    from ig_outbound.cli.app import _print_json

    async def show(admin: AccountAdmin) -> AccountView:
        return await admin.show(account_id)

    _print_json(_view_json(_run(show)))


@accounts_app.command("remove")
def accounts_remove(account_id: Annotated[str, typer.Argument(help="IG account id.")]) -> None:
    """Remove an account: producers refuse it at once; its queued intents end `failed`
    (`account_removed`). `accounts add` brings it back."""
    from ig_outbound.cli.app import _print_json

    async def remove(admin: AccountAdmin) -> str:
        return await admin.remove(account_id)

    _print_json({"account_id": account_id, "result": _run(remove)})


@accounts_app.command("refresh")
def accounts_refresh(
    account_id: Annotated[str, typer.Argument(help="IG account id.")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for a worker to do it.")] = 30.0,
) -> None:
    """Ask the fleet to refresh the token now; prints the result. Exit 1: no worker took the
    request in time, or the refresh failed (see `last_refresh_error`)."""
    from ig_outbound.cli.app import _print_json

    async def refresh(admin: AccountAdmin) -> Any:
        return await admin.request_refresh(account_id, wait_s=wait)

    result = _run(refresh)
    _print_json({"status": result.status, "account": _view_json(result.account)})
    if result.status != "done":
        raise typer.Exit(1)


@accounts_app.command("subscribe")
def accounts_subscribe(account_id: Annotated[str, typer.Argument(help="IG account id.")]) -> None:
    """Subscribe a stored account to the webhook fields again. Exit 3 if Graph refused."""
    from ig_outbound.cli.app import _print_json

    async def subscribe(admin: AccountAdmin) -> str | None:
        return await admin.subscribe(account_id)

    error = _run(subscribe)
    _print_json({"account_id": account_id, "subscribed": error is None, "error": error})
    if error is not None:
        raise typer.Exit(3)


@accounts_app.command("rekey")
def accounts_rekey() -> None:
    """Re-encrypt every stored token under the first key (after a key rotation)."""
    from ig_outbound.cli.app import _print_json

    async def rekey(admin: AccountAdmin) -> dict[str, str]:
        return await admin.rekey()

    _print_json(_run(rekey))


@accounts_app.command("new-key")
def accounts_new_key() -> None:
    """Print a new encryption key (for IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS)."""
    from ig_outbound.accounts.cipher import new_key

    typer.echo(new_key())
