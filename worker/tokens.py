"""The tokens a worker sends with, from three sources, kept current while it runs.

* **environment** (`IG_OUTBOUND_TOKENS`): read at start.
* **tokens file** (`IG_OUTBOUND_TOKENS_FILE`): re-read when its content changes (checked every
  `accounts.poll_s`: a Kubernetes Secret volume is updated in place by a symlink swap, which
  a content check sees and an inotify watch on the file can miss) and on SIGHUP. A change is
  applied once two checks in a row read the same content (a file caught half-written would
  otherwise yield a cut token); SIGHUP applies at once. A file that turns malformed, or
  empty, keeps the last good tokens and logs one line (once per bad content), never a token.
  An account that leaves the file is not removed fleet-wide (another worker's file may hold
  it now): `ig-outbound accounts remove` does that.
* **the registry** (`ig_outbound/accounts/`): tokens stored by `accounts add` and refreshed
  copies of the others, encrypted; reloaded when its version changes.

For an account the worker uses, in order: nothing if the registry removed it; a stored token
(`accounts add`); a refreshed copy of its local token while the local token is still the one
it was refreshed from; its local token (the file over the environment).

Swapping the maps is one assignment, so a send in flight keeps the token it started with.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from pydantic import SecretStr

from ig_outbound.accounts.cipher import TokenCipher, fingerprint
from ig_outbound.accounts.errors import CorruptAccountError
from ig_outbound.accounts.registry import AccountEntry, AccountRegistry, Source, is_account_id
from ig_outbound.logs import set_secrets
from ig_outbound.producers.shards import ShardMap
from ig_outbound.worker import metrics
from ig_outbound.worker.errors import TokenConfigError
from ig_outbound.worker.settings import Settings

log = structlog.get_logger("ig_outbound.tokens")

# A job for an account this worker has no token for reloads the registry at most this often.
_FORCED_RELOAD_MIN_S = 0.5


def parse_tokens_text(text: str, name: str) -> dict[str, SecretStr]:
    """A JSON object or `account_id=token` lines; ``TokenConfigError`` names the problem
    (file name and line), never a token."""
    stripped = text.strip()
    out: dict[str, SecretStr] = {}
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):  # (a number past int's digit limit too)
            raise TokenConfigError(f"tokens file {name!r} is not valid JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise TokenConfigError(f"tokens file {name!r} must map account ids to strings")
        out = {k: SecretStr(v.strip()) for k, v in data.items()}
    else:
        for number, line in enumerate(stripped.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            account, sep, token = line.partition("=")
            if not sep or not is_account_id(account.strip()) or not token.strip():
                raise TokenConfigError(
                    f"tokens file {name!r} line {number}: expected `account_id=token`"
                )
            out[account.strip()] = SecretStr(token.strip())
    for number, (account, secret) in enumerate(out.items(), start=1):
        # (never quote the id: a file with ids and tokens swapped would print a token)
        if not is_account_id(account):
            raise TokenConfigError(f"tokens file {name!r}: account id {number} is not numeric")
        _check_token(secret.get_secret_value(), f"tokens file {name!r}: account {account}")
    return out


def _check_token(token: str, where: str) -> None:
    if not token.strip():
        raise TokenConfigError(f"{where} has an empty token")
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON ("\ud800")
        raise TokenConfigError(f"{where} has a token that is not valid text") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TokenConfigError(f"cannot read tokens file {path.name!r}: {exc.strerror}") from None


ReloadResult = Literal["unchanged", "changed", "error"]


def served_accounts(settings: Settings) -> Callable[[str], bool] | None:
    """Whether an account is on a shard this worker serves (None: no shards, all are)."""
    shards = ShardMap.from_settings(settings)
    if len(shards) == 1:
        return None
    served = frozenset(settings.served_shards())
    return lambda account: shards.index(account) in served


class LocalTokens:
    """Tokens from the environment and the tokens file."""

    def __init__(
        self,
        env: Mapping[str, SecretStr],
        path: Path | None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """`owns`: which accounts this worker serves (its shards'); the others' tokens are
        read and checked but not used (the tokens file may be shared by every shard)."""
        self._owns = owns
        for number, account in enumerate(env, start=1):
            if not is_account_id(account):
                raise TokenConfigError(f"IG_OUTBOUND_TOKENS: account id {number} is not numeric")
            _check_token(env[account].get_secret_value(), f"IG_OUTBOUND_TOKENS: account {account}")
        self._env = dict(env)
        self._path = path
        self._file: dict[str, SecretStr] = {}
        self._digest: bytes | None = None
        self._pending: bytes | None = None  # a new content seen once, applied if it stays
        self._refused: bytes | None = None  # a bad content already reported (said once)
        if path is not None:  # at start a bad file is fatal: nothing good to keep yet
            content = _read(path)
            self._file = self._parse(content)
            self._digest = hashlib.sha256(content).digest()

    def _parse(self, content: bytes) -> dict[str, SecretStr]:
        name = self._path.name if self._path is not None else "?"
        try:
            text = content.decode("utf-8-sig")  # (an editor's byte order mark is no token)
        except UnicodeDecodeError:
            raise TokenConfigError(f"tokens file {name!r} is not UTF-8") from None
        return parse_tokens_text(text, name)

    async def reload(self, *, now: bool = False) -> ReloadResult:
        """Re-read the file; apply a new content seen twice in a row (or at once: `now`).
        A bad file keeps the last good tokens."""
        if self._path is None:
            return "unchanged"
        content_digest: bytes | None = None
        try:
            content = await asyncio.to_thread(_read, self._path)
            digest = content_digest = hashlib.sha256(content).digest()
            if digest == self._digest or digest == self._refused:
                self._pending = None
                return "unchanged"
            if not now and digest != self._pending:
                self._pending = digest
                return "unchanged"
            self._pending = None
            tokens = self._parse(content)
            if not tokens and self._file:
                raise TokenConfigError(
                    f"tokens file {self._path.name!r} is empty (remove accounts with "
                    "`ig-outbound accounts remove`, not by emptying the file)"
                )
        except TokenConfigError as exc:
            if content_digest is not None:
                self._refused = content_digest
            log.error("tokens_file_invalid", error=str(exc), kept_accounts=len(self._file))
            metrics.TOKEN_RELOADS.labels(result="error").inc()
            return "error"
        self._file, self._digest = tokens, digest
        metrics.TOKEN_RELOADS.labels(result="changed").inc()
        log.info("tokens_file_reloaded", accounts=len(tokens))
        return "changed"

    def tokens(self) -> dict[str, tuple[Source, SecretStr]]:
        out: dict[str, tuple[Source, SecretStr]] = {a: ("env", t) for a, t in self._env.items()}
        out.update({a: ("file", t) for a, t in self._file.items()})
        if self._owns is not None:
            out = {a: v for a, v in out.items() if self._owns(a)}
        return out


@dataclass(frozen=True)
class Credential:
    """The token to send with for one account, and its fingerprint (to compare tokens with
    the registry's without the tokens)."""

    token: str = field(repr=False)
    fingerprint: str
    source: Source


class TokenBook:
    """Resolves each account's token from the local sources and the registry."""

    def __init__(
        self,
        settings: Settings,
        registry: AccountRegistry,
        local: LocalTokens,
        cipher: TokenCipher | None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._local = local
        self._cipher = cipher
        self._version = -1
        self._entries: dict[str, AccountEntry] = {}
        self._corrupt: dict[str, str] = {}
        self._creds: dict[str, Credential] = {}
        self._plain: dict[str, str] = {}  # ciphertext -> token, so each is decrypted once
        self._synced: set[str] = set()  # local accounts registered by this worker
        self._warned: set[str] = set()
        self._forced_at = 0.0
        self._lock = asyncio.Lock()
        self._resolve()

    @classmethod
    def from_settings(cls, settings: Settings, registry: AccountRegistry) -> TokenBook:
        """Reads the local sources (``TokenConfigError`` for a bad one: the worker does not
        start) and the encryption keys (``AccountConfigError``)."""
        local = LocalTokens(settings.tokens, settings.tokens_file, served_accounts(settings))
        return cls(settings, registry, local, TokenCipher.from_settings(settings.accounts))

    # --- what jobs read (no I/O) --------------------------------------------------------------

    def get(self, account_id: str) -> Credential | None:
        return self._creds.get(account_id)

    def entry(self, account_id: str) -> AccountEntry | None:
        return self._entries.get(account_id)

    def entries(self) -> dict[str, AccountEntry]:
        return dict(self._entries)

    def corrupt(self) -> dict[str, str]:
        return dict(self._corrupt)

    def accounts(self) -> list[str]:
        """Accounts this worker can send for."""
        return sorted(self._creds)

    def secrets(self) -> list[str]:
        """Every token held, for the log redaction filter only."""
        return [c.token for c in self._creds.values()]

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def cipher(self) -> TokenCipher | None:
        return self._cipher

    @property
    def registry(self) -> AccountRegistry:
        return self._registry

    # --- keeping current ----------------------------------------------------------------------

    async def start(self) -> None:
        """Register the local tokens and read the registry (worker start-up)."""
        await self.sync_local()
        await self.reload(force=True)

    async def poll(self) -> None:
        """One check (every `accounts.poll_s`): the tokens file, then the registry version."""
        if await self._local.reload() == "changed":
            await self.sync_local()
        await self.reload()

    async def on_sighup(self) -> None:
        log.info("sighup_reload")
        if await self._local.reload(now=True) == "changed":
            await self.sync_local()
        await self.reload(force=True)

    async def sync_local(self) -> None:
        """Tell the registry which local tokens this worker holds (fingerprints only)."""
        local = self._local.tokens()
        triples = [
            (a, source, fingerprint(t.get_secret_value())) for a, (source, t) in local.items()
        ]
        verdicts = await self._registry.sync(triples)
        for account, verdict in verdicts.items():
            if verdict == "removed" and account not in self._warned:
                self._warned.add(account)
                log.warning("local_token_of_removed_account_ignored", account=account)
        for account in sorted(self._synced - set(local)):
            # Not removed fleet-wide: another worker's file may hold it now (a move). An
            # operator who means it runs `ig-outbound accounts remove`.
            log.warning("account_left_tokens_file", account=account)
        self._synced = set(local)

    async def poll_registry(self) -> bool:
        """Re-read the registry if it changed; True if it was read."""
        return await self.reload()

    async def reload(self, *, force: bool = False) -> bool:
        """Re-read the registry if its version changed (or `force`); True if it was read."""
        async with self._lock:
            version = await self._registry.version()
            if version == self._version and not force:
                return False
            entries, corrupt = await self._registry.load()
            self._version = version
            self._entries = entries
            self._corrupt = {a: str(exc) for a, exc in corrupt.items()}
            for account, problem in self._corrupt.items():
                log.error("account_entry_corrupt", account=account, problem=problem)
            self._resolve()
            return True

    async def ensure(self, account_id: str) -> Credential | None:
        """The credential, reloading the registry first if there is none yet (an account
        added a moment ago), at most every half second."""
        cred = self._creds.get(account_id)
        if cred is None and time.monotonic() - self._forced_at >= _FORCED_RELOAD_MIN_S:
            self._forced_at = time.monotonic()
            await self.reload(force=True)
            cred = self._creds.get(account_id)
        return cred

    async def report_invalid(
        self, account_id: str, cred: Credential, reason: str, pause_ms: int
    ) -> str:
        """Graph refused this token: mark the account needs_reauth ('marked'), unless it was
        replaced meanwhile ('stale': the registry was re-read and this worker now holds
        another token to send with; 'refused_here' when it does not)."""
        verdict = await self._registry.report_invalid(
            account_id, cred.fingerprint, reason, pause_ms
        )
        await self.reload(force=verdict == "stale")
        if verdict == "stale":
            now = self._creds.get(account_id)
            if now is None or now.fingerprint == cred.fingerprint:
                # The registry's token is another worker's local one: this worker has no
                # other token to try (its own file has not changed).
                return "refused_here"
        return verdict

    def _resolve(self) -> None:
        local = self._local.tokens()
        creds: dict[str, Credential] = {}
        plain: dict[str, str] = {}
        for account in set(local) | set(self._entries):
            entry = self._entries.get(account)
            if entry is not None and entry.state == "removed":
                continue
            here = local.get(account)
            here_fp = fingerprint(here[1].get_secret_value()) if here else None
            stored = (
                entry is not None
                and entry.ciphertext is not None
                and (entry.source == "store" or entry.lineage == here_fp)
            )
            if stored and entry is not None and entry.ciphertext is not None:
                token = self._decrypt(account, entry.ciphertext)
                if token is not None:
                    plain[entry.ciphertext] = token
                    creds[account] = Credential(token, entry.fingerprint or "", "store")
                    continue
                if entry.source == "store":
                    continue  # unreadable: no token rather than a wrong one
            if here is not None and here_fp is not None:
                creds[account] = Credential(here[1].get_secret_value(), here_fp, here[0])
        self._creds, self._plain = creds, plain
        set_secrets([c.token for c in creds.values()])

    def _decrypt(self, account_id: str, ciphertext: str) -> str | None:
        known = self._plain.get(ciphertext)
        if known is not None:
            return known
        if self._cipher is None:
            self._corrupt[account_id] = (
                f"account {account_id}: its token is stored encrypted but no key is configured "
                "(IG_OUTBOUND_ACCOUNTS__ENCRYPTION_KEYS)"
            )
            return None
        try:
            return self._cipher.decrypt(ciphertext, account_id=account_id)
        except CorruptAccountError as exc:
            self._corrupt[account_id] = str(exc)
            log.error("account_token_unreadable", account=account_id, problem=str(exc))
            return None

    def __repr__(self) -> str:
        return f"TokenBook(accounts={self.accounts()!r})"
