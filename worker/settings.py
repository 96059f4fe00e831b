"""The worker's settings: the client settings plus everything only the worker reads.

Read from the environment with the prefix ``IG_OUTBOUND_``; nested sections use ``__``
(``IG_OUTBOUND_GRAPH__API_VERSION=v23.0``). Tokens are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    SecretStr,
    field_validator,
    model_validator,
)

from ig_outbound.accounts.settings import AccountToolSettings
from ig_outbound.producers.shards import ShardMap, shard_settings
from ig_outbound.producers.window import (
    WINDOW_HUMAN_AGENT_S,
    WINDOW_MARGIN_S,
    WINDOW_PRIVATE_REPLY_S,
    WINDOW_STANDARD_S,
    WINDOW_UNKNOWN,
    WindowUnknown,
)
from ig_outbound.producers.wire import MAX_TRANSIT_MS


class RetrySettings(BaseModel):
    """Our own attempt budget (ARQ's max_tries also counts restarts, so it does not decide)."""

    max_attempts: int = Field(default=6, ge=1)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)
    # How long an account-level problem (bad token, blocked account) pauses the account.
    account_pause_s: float = Field(default=60.0, gt=0)
    # Fallback pause when Meta throttles without saying for how long.
    throttle_pause_s: float = Field(default=5.0, gt=0)


class RateSettings(BaseModel):
    """Meta's per-account limits (fact sheet section 3) and how close to them we run."""

    light_per_s: float = Field(default=100.0, gt=0)
    media_per_s: float = Field(default=10.0, gt=0)
    private_replies_per_h: float = Field(default=750.0, gt=0)
    # Fraction of each limit the fleet may use (less leaves room for another app sending
    # with the same account). The transit allowance, not this, absorbs network jitter.
    utilization: float = Field(default=1.0, gt=0, le=1)
    # The limiter counts sends over Meta's window plus a transit allowance, so requests
    # delayed on their way never crowd into one of Meta's windows at arrival
    # (worker/transit.py): the spread of the sends' measured round trips, at least
    # `transit_min_ms`, at most `transit_max_ms` (which is used until measured, and always
    # when `transit_measured` is off).
    transit_measured: bool = True
    transit_min_ms: int = Field(default=2, ge=0, le=MAX_TRANSIT_MS)
    transit_max_ms: int = Field(default=100, ge=0, le=MAX_TRANSIT_MS)
    # Sends that may leave back to back before spacing applies (GCRA burst tolerance) in
    # the per-second classes. 1 spaces every send: bursts above it would only meet a full
    # window and wait.
    burst: int = Field(default=1, ge=1)
    # `X-Business-Use-Case-Usage` at or above this slows the account by `slowdown_factor`
    # for `slowdown_s` (someone else may be using the same account's budget).
    slowdown_usage_pct: float = Field(default=98.0, gt=0, le=100)
    # ... but only when the usage is at least this many points above the fleet's own share
    # of the window (worker/job.py `_heed_usage`): the fleet's own pace is not a reason.
    slowdown_others_pct: float = Field(default=5.0, ge=0, le=100)
    slowdown_factor: float = Field(default=0.5, gt=0, le=1)
    slowdown_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _transit_bounds(self) -> RateSettings:
        if self.transit_min_ms > self.transit_max_ms:
            raise ValueError("rate.transit_min_ms must not exceed rate.transit_max_ms")
        return self


class WindowSettings(BaseModel):
    """Meta's messaging windows (producers/window.py has their sources). The workers publish
    them for the enqueue script; the journal checks them again just before each send."""

    standard_s: int = Field(default=WINDOW_STANDARD_S, ge=1)
    human_agent_s: int = Field(default=WINDOW_HUMAN_AGENT_S, ge=1)
    private_reply_s: int = Field(default=WINDOW_PRIVATE_REPLY_S, ge=1)
    # Sent this long before the window closes at the latest (requests take time to arrive).
    margin_s: float = Field(default=WINDOW_MARGIN_S, ge=0)
    # No webhook fact and no window_hint: `allow` lets Graph decide, `refuse` refuses.
    unknown: WindowUnknown = WINDOW_UNKNOWN


class MediaSettings(BaseModel):
    """Probing media URLs before sending (worker/media/): type and size against the seed's
    table, without ever letting a URL reach our own network (SSRF)."""

    # Off: media go to Graph unchecked (Graph decides).
    probe: bool = True
    # One probe (every request and redirect of it) ends within this.
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_redirects: int = Field(default=3, ge=0, le=10)
    # A ranged GET reads at most this much (enough for any file's magic bytes).
    read_bytes: int = Field(default=4096, ge=64, le=1_048_576)
    # What a probe found is shared by the fleet this long (Redis); a failure half a minute.
    cache_ttl_s: int = Field(default=3600, ge=0)
    # Extra CA bundle to trust when probing (the demo's and tests' emulator serves media
    # over https with a throwaway CA); None: the system's CAs only. Media URLs are always
    # https (the intent contract refuses others).
    ca_file: Path | None = None
    # Hosts (names or IP networks, e.g. `127.0.0.1/32`) a probe may reach although they are
    # private, loopback or link-local: for tests and the demo only.
    allow_hosts: list[str] = Field(default_factory=list)


DISCLOSURE_LANGUAGES = ("en", "ko", "de")


class DisclosureRule(BaseModel):
    """One account's bot disclosure (worker/disclosure.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # `always`, or only when `markets` include one of `required_markets` (California,
    # Germany: where the law asks).
    mode: Literal["always", "markets"] = "always"
    markets: list[str] = Field(default_factory=list)
    # The text; none: the default sentence in `language`.
    text: str | None = Field(default=None, min_length=1, max_length=640)
    language: Literal["en", "ko", "de"] = "en"
    # After this long without an automated message a conversation counts as new.
    lapse_hours: float = Field(default=24.0, gt=0, le=24 * 365)


class DisclosureSettings(BaseModel):
    """Bot disclosure per account: `default` for every account, `accounts` per IG_ID."""

    model_config = ConfigDict(extra="forbid")

    default: DisclosureRule = DisclosureRule()
    accounts: dict[str, DisclosureRule] = Field(default_factory=dict)
    required_markets: list[str] = Field(default_factory=lambda: ["US-CA", "DE"])

    @field_validator("accounts")
    @classmethod
    def _numeric_ids(cls, value: dict[str, DisclosureRule]) -> dict[str, DisclosureRule]:
        bad = [account for account in value if not account.isdigit()]
        if bad:
            raise ValueError(f"account ids must be numeric IG_IDs: {bad[:3]}")
        return value


class WorkerTuning(BaseModel):
    """ARQ knobs, chosen by measurement (see bench/ and the README)."""

    max_jobs: int = Field(default=40, ge=1)
    poll_delay_s: float = Field(default=0.02, gt=0)
    # Above the fleet's total in-flight jobs to avoid ARQ's head-of-line stall (arq-notes A.4).
    queue_read_limit: int = Field(default=1000, ge=1)
    # ARQ re-runs a SIGKILLed worker's job after its in-progress key expires: job timeout +
    # 10 s (arq-notes A.3), so this sets crash recovery time (30 s by default).
    job_timeout_s: float = Field(default=20.0, gt=1)
    health_check_interval_s: int = Field(default=15, ge=1)
    # Seconds SIGTERM waits for in-flight sends before cancelling them.
    drain_timeout_s: int = Field(default=20, ge=0)
    # Every worker republishes its accounts and rate spacing this often (a Redis that lost
    # them is refilled), and measures Redis's clock again (worker/clock.py).
    republish_interval_s: float = Field(default=10.0, gt=0)
    # One worker of the fleet sweeps stuck conversations this often (worker/housekeeping.py).
    sweep_interval_s: float = Field(default=15.0, gt=0)
    # Every worker says it is alive this often: the file `ig-outbound health live` checks
    # (None: no file) and its entry in `<prefix>:workers`. After 3 missed beats it is dead
    # and a live worker takes its running jobs back (crash recovery in about 4 s, whatever
    # the job timeout).
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=300)
    heartbeat_file: Path | None = Path("/tmp/ig-outbound-worker.alive")
    # One worker of the fleet computes the fleet's gauges this often (worker/fleet_metrics.py).
    fleet_metrics_interval_s: float = Field(default=10.0, gt=0, le=300)
    # Which shards (indexes into IG_OUTBOUND_SHARDS) this worker serves; empty: all of them.
    # One ARQ worker serves one shard: `ig-outbound worker` runs one process per served shard
    # (docs/scaling.md), each with this set to its one index.
    shards: list[int] = Field(default_factory=list, max_length=1024)

    @property
    def heartbeat_stale_s(self) -> float:
        return self.heartbeat_interval_s * 3


class Settings(AccountToolSettings):
    """Every setting of the worker (see the README's settings table): the client's, Graph's
    and the account registry's (shared with `ig-outbound accounts`), and its own."""

    # Approximate caps of the streams. An outcome is at most a few KB; a dead letter carries
    # its intent too (at most 64 KiB), so the DLQ's worst case is dead_letters_maxlen x 64 KiB.
    outcomes_stream_maxlen: int = Field(default=100_000, ge=100)
    dead_letters_maxlen: int = Field(default=10_000, ge=100)
    # What to do with a send whose fate is unknown (request left, no answer; worker killed
    # mid-send): `reconcile` (wait up to the grace period for its echo webhook, then resend),
    # `resend` at once (counted as an ambiguous send), `fail` (outcome `unknown`), or `auto`:
    # `reconcile` while a gateway is processing webhooks (echoes flow), else `resend`.
    ambiguous_policy: Literal["auto", "reconcile", "resend", "fail"] = "auto"
    reconcile_grace_s: float = Field(default=15.0, ge=0)

    retry: RetrySettings = RetrySettings()
    rate: RateSettings = RateSettings()
    window: WindowSettings = WindowSettings()
    media: MediaSettings = MediaSettings()
    disclosure: DisclosureSettings = DisclosureSettings()
    worker: WorkerTuning = WorkerTuning()

    # Access tokens per IG account id: a JSON object in the environment, or a file holding a
    # JSON object or `account_id=token` lines, re-read when it changes and on SIGHUP. Never
    # stored in Redis in plaintext, never logged. (`ig-outbound accounts add` stores tokens
    # in Redis, encrypted, for fleets that add accounts at run time.)
    tokens: dict[str, SecretStr] = Field(default_factory=dict)
    tokens_file: Path | None = None

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # The address it listens on: 0.0.0.0 is every IPv4 interface, :: every interface (IPv6,
    # and IPv4 where the OS maps it), 127.0.0.1 this host only. An IP address, not a name.
    metrics_addr: IPvAnyAddress = IPv4Address("0.0.0.0")
    # Accounts whose sends are counted per account (`ig_outbound_account_sends_total`):
    # labels stay bounded, so only these. Each must be an account this worker serves.
    metrics_accounts: list[str] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _shards_exist(self) -> Settings:
        self.served_shards()  # ShardConfigError is a ValueError: an invalid setting
        return self

    def served_shards(self) -> list[int]:
        """The shard indexes this worker serves (`ShardConfigError` for one that does not
        exist): `worker.shards`, or every shard."""
        shards = ShardMap.from_settings(self)
        chosen = self.worker.shards or list(range(len(shards)))
        return sorted({shards.check(i) for i in chosen})

    @property
    def shard_label(self) -> str | None:
        """The `shard` label of this worker's fleet series (None without shards)."""
        if not self.shards:
            return None
        return ",".join(map(str, self.served_shards()))


def pin_shard(settings: Settings) -> Settings:
    """Settings of a worker that serves one shard aim at that shard's Redis (`redis_url`);
    settings that name several shards stay as they are (`ig-outbound worker` then runs a
    process per shard)."""
    served = settings.served_shards()
    if len(served) != 1:
        return settings
    pinned = shard_settings(settings, served[0])
    assert isinstance(pinned, Settings)
    return pinned


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide worker settings, read once from the environment (aimed at the
    shard it serves: `pin_shard`)."""
    return pin_shard(Settings())
