"""The chaos stack: real processes (redis-server with AOF, the gateway, the Graph emulator,
`ig-outbound worker` processes) to SIGKILL, SIGTERM and cut off from Redis on purpose.

The emulator POSTs the echo of every message it delivers, signed, to the gateway, which
indexes it: with the default ambiguous policy (`auto`) workers settle a send that got no
answer by its echo instead of resending it. The suite's crash-safety tests (tests/chaos) and
the soak (bench/soak.py) run on it and read the same books (`Ledger`). Each intent's text
contains its idempotency key, so every call the emulator recorded maps back to one intent.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis
from pydantic import SecretStr
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from ig_outbound.emulator import EmulatorConfig, EmulatorControl, run_emulator_process
from ig_outbound.emulator.config import AccountConfig, FaultSettings, WebhookConfig
from ig_outbound.harness.env import fleet_settings, gateway_settings, tuned
from ig_outbound.harness.errors import ChaosError
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.ledger import Ledger
from ig_outbound.harness.processes import GatewayProcess, RedisServer, WorkerProcess, free_port
from ig_outbound.harness.wait import wait_registered
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

PREFIX = "igo-chaos"
TEXT_PREFIX = "chaos intent "


def fast_settings(settings: Settings) -> Settings:
    """Worker settings for chaos runs: a short job timeout (a SIGKILLed worker's job comes
    back after job timeout + 10 s = 14 s, ARQ's in-progress TTL), HTTP timeouts well inside
    it, and short backoffs and pauses."""
    return tuned(
        settings,
        worker={"job_timeout_s": 4, "drain_timeout_s": 5},
        graph={
            "connect_timeout_s": 0.5,
            "read_timeout_s": 1.0,
            "write_timeout_s": 0.5,
            "pool_timeout_s": 0.5,
        },
        retry={
            "backoff_base_s": 0.05,
            "backoff_cap_s": 0.5,
            "throttle_pause_s": 0.5,
            "account_pause_s": 0.5,
        },
    )


def retrying_redis(url: str) -> Any:
    """A decoded sync client that rides out a Redis restart (typed Any: redis-py's stubs
    type the sync and async clients at once)."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5.0,
        socket_connect_timeout=1.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 30),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def tail(path: Path | None, chars: int = 3000) -> str:
    """The end of a log file ("" if there is none)."""
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-chars:]


class ChaosStack:
    """Private Redis (AOF on), the gateway (`gateway=False`: none), the emulator with
    accounts and users (its webhooks signed to the gateway), and worker processes.

    Workers run `settings` (this stack's Redis, prefix, emulator and tokens, passed through
    `tune`). A context manager: leaving it SIGKILLs every worker still running (after a
    short SIGTERM drain), stops the gateway, the emulator and Redis, and deletes Redis's data
    directory.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        accounts: int = 4,
        recipients: int = 25,
        tune: Callable[[Settings], Settings] | None = None,
        faults: Mapping[str, Any] | None = None,
        prefix: str = PREFIX,
        gateway: bool = True,
    ) -> None:
        self.workdir = workdir
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.tokens = {
            f"1784140{n:010d}": "IGAA" + secrets.token_urlsafe(24) for n in range(1, accounts + 1)
        }
        self.accounts = list(self.tokens)
        self.users = [f"1254477{n:010d}" for n in range(1, recipients + 1)]
        self._faults = FaultSettings(**dict(faults or {}))
        self._tune = tune or (lambda s: s)
        self.redis = RedisServer(persistent=True)
        self._with_gateway = gateway
        self.gateway: GatewayProcess | None = None
        # Signs the emulator's webhooks; the gateway verifies them with it.
        self.app_secret = secrets.token_urlsafe(24)
        self.graph_url = ""
        self.settings: Settings  # known once the emulator runs (`__enter__`)
        self.control: EmulatorControl
        self.db: Any = None
        self.workers: list[WorkerProcess] = []
        self._started = 0
        self._exit = ExitStack()

    # lifecycle

    def __enter__(self) -> ChaosStack:
        try:
            self.redis.start()
            self._exit.callback(self.redis.close)
            if self._with_gateway:
                self.gateway = self._exit.enter_context(self._gateway())
            self.graph_url = self._exit.enter_context(run_emulator_process(self._emulator()))
            self.control = self._exit.enter_context(EmulatorControl(self.graph_url, timeout=120))
            self.settings = self._tune(
                fleet_settings(
                    redis_url=self.redis.url,
                    key_prefix=self.prefix,
                    graph_url=self.graph_url,
                    tokens=self.tokens,
                )
            )
            self._exit.callback(self.stop_workers)
            self.db = retrying_redis(self.redis.url)
            self._exit.callback(self.db.close)
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _gateway(self) -> GatewayProcess:
        """The gateway on this stack's Redis and prefix (not started)."""
        client = ClientSettings(redis_url=self.redis.url, key_prefix=self.prefix)
        settings = gateway_settings(client, port=free_port(), app_secrets=[self.app_secret])
        return GatewayProcess.from_settings(settings, log_path=self.workdir / "gateway.log")

    def _emulator(self) -> EmulatorConfig:
        webhooks = WebhookConfig()  # no URL: no webhooks
        if self.gateway is not None:
            webhooks = WebhookConfig(
                url=self.gateway.webhook_url, app_secret=SecretStr(self.app_secret)
            )
        return EmulatorConfig(
            accounts=[
                AccountConfig(ig_id=a, token=t, username=f"chaos{a[-4:]}")
                for a, t in self.tokens.items()
            ],
            users={a: self.users for a in self.accounts},
            faults=self._faults,
            webhooks=webhooks,
        )

    def start_worker(self, **changes: Any) -> WorkerProcess:
        """Start a worker on the stack's settings with `changes` (as for `tuned`:
        `graph={"read_timeout_s": 3}`); its log goes to the work directory."""
        self._started += 1
        log = self.workdir / f"worker-{self._started:04d}.log"
        settings = tuned(self.settings, **changes)
        worker = WorkerProcess.from_settings(settings, log_path=log).start()
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: WorkerProcess) -> None:
        """SIGKILL (no cleanup at all), then reap it and close its log."""
        worker.kill()
        worker.stop()
        if worker in self.workers:
            self.workers.remove(worker)

    def stop_worker(self, worker: WorkerProcess, grace_s: float = 30.0) -> int | None:
        """SIGTERM (the worker drains its in-flight sends), SIGKILL after `grace_s`."""
        code = worker.stop(grace_s)
        if worker in self.workers:
            self.workers.remove(worker)
        return code

    def stop_workers(self, grace_s: float = 15.0) -> None:
        """SIGTERM every worker at once (they drain together), then reap each."""
        for worker in list(self.workers):
            if worker.alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in list(self.workers):
            self.stop_worker(worker, grace_s)

    def wait_registered(self, timeout_s: float = 60.0) -> None:
        """Wait until a worker has registered the accounts (producers refuse them before)."""
        wait_registered(self.settings, len(self.accounts), timeout_s)

    def log_tail(self, chars: int = 3000) -> str:
        logs = [*sorted(self.workdir.glob("worker-*.log"))[-3:], self.workdir / "gateway.log"]
        return "\n".join(f"--- {p.name} ---\n{tail(p, chars)}" for p in logs if p.exists())

    # intents and books

    def intent(self, key: str, n: int = 0) -> dict[str, Any]:
        """A text intent whose text contains its key (so emulator calls map back to it); `n`
        spreads intents over the accounts and recipients."""
        account = self.accounts[n % len(self.accounts)]
        recipient = self.users[(n // len(self.accounts)) % len(self.users)]
        return text_intent(key, account, recipient, TEXT_PREFIX + key)

    def enqueue(self, intents: Sequence[Mapping[str, Any]], attempts: int = 20) -> list[str]:
        """Enqueue a batch, retrying it whole while Redis is away (enqueue is idempotent:
        a resent intent comes back `duplicate`); returns the accepted keys."""
        for attempt in range(attempts):
            try:
                with SyncOutboundClient(retrying_redis(self.redis.url), self.settings) as c:
                    results = c.enqueue_many(intents)
                break
            except RedisError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)
        refused = [(r.key, r.error) for r in results if not r.accepted]
        if refused:
            raise ChaosError(f"{len(refused)} intents refused, e.g. {refused[:3]}")
        return [r.key for r in results if r.key is not None]

    def outcome_count(self) -> int:
        return int(self.db.xlen(self.keys.outcomes))

    def record(self, key: str) -> dict[str, str]:
        return dict(self.db.hgetall(self.keys.record(key)))

    def live_workers(self, within_ms: int = 2000) -> int:
        """Workers whose heartbeat is at most `within_ms` old (on Redis's clock)."""
        now_ms = int(self.db.time()[0]) * 1000
        return int(self.db.zcount(self.keys.workers, now_ms - within_ms, "+inf"))

    def deliveries(self) -> tuple[Counter[str], int]:
        """Emulator deliveries per key, and the number of calls that map to no key."""
        per_key, unmapped, _ = self._calls()
        return per_key, unmapped

    def _calls(self) -> tuple[Counter[str], int, dict[str, list[str]]]:
        """Deliveries per key, calls that map to no key, and per key the fault the emulator
        injected into each delivery's answer ("" for a plain success): the deliveries of a
        doubled intent say which answer made the fleet send again."""
        per_key: Counter[str] = Counter()
        faults: dict[str, list[str]] = {}
        unmapped = 0
        for call in self.control.calls()["calls"]:
            text = ((call.get("body") or {}).get("message") or {}).get("text")
            if isinstance(text, str) and text.startswith(TEXT_PREFIX):
                key = text[len(TEXT_PREFIX) :]
                per_key[key] += 1
                faults.setdefault(key, []).append(call.get("fault") or "")
            else:
                unmapped += 1
        return per_key, unmapped, faults

    def echoes(self) -> int:
        """Events the gateway recorded on the inbound stream: in a chaos run only echoes
        (nobody writes to the accounts); 0 without a gateway."""
        return int(self.db.xlen(self.keys.inbound))

    def ledger(self, accepted: Sequence[str]) -> Ledger:
        """Read the books: records, the outcomes stream, the counter, the emulator's calls."""
        statuses, ambiguous, reasons = self._records(accepted)
        deliveries, unmapped, faults = self._calls()
        counter = int(self.db.hget(self.keys.counters, "ambiguous_sends") or 0)
        return Ledger(
            accepted=list(accepted),
            statuses=statuses,
            ambiguous=ambiguous,
            stream=self._stream(),
            deliveries=deliveries,
            unmapped_calls=unmapped,
            ambiguous_counter=counter,
            reasons=reasons,
            delivery_faults=faults,
        )

    def _records(
        self, accepted: Sequence[str]
    ) -> tuple[dict[str, str | None], dict[str, int], Counter[str]]:
        """Each key's outcome status (None: no outcome) and `ambiguous` count, and how many
        outcomes name each reason (`reconciled`: settled by its echo)."""
        statuses: dict[str, str | None] = {}
        ambiguous: dict[str, int] = {}
        reasons: Counter[str] = Counter()
        for i in range(0, len(accepted), 1000):
            chunk = accepted[i : i + 1000]
            with self.db.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hmget(self.keys.record(key), "outcome", "ambiguous")
                rows = pipe.execute()
            for key, (outcome, amb) in zip(chunk, rows, strict=True):
                parsed = None if outcome is None else Outcome.model_validate_json(outcome)
                statuses[key] = None if parsed is None else parsed.status.value
                if parsed is not None and parsed.reason:
                    reasons[parsed.reason] += 1
                ambiguous[key] = int(amb or 0)
        return statuses, ambiguous, reasons

    def _stream(self) -> Counter[str]:
        """Entries on the outcomes stream per key."""
        stream: Counter[str] = Counter()
        last = "-"
        while True:
            entries = self.db.xrange(self.keys.outcomes, min=last, max="+", count=5000)
            if last != "-":
                entries = entries[1:]  # `min` is inclusive
            if not entries:
                return stream
            stream.update(fields.get("key", "") for _, fields in entries)
            last = entries[-1][0]
