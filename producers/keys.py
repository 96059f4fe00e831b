"""Every Redis key name ig-outbound uses, defined once.

`KEY_TEMPLATES` is the one definition: the `Keys` methods format it in Python, and the Lua
scripts get generated builder functions from it (`key_<name>(prefix, ...)`, see
`producers/scripts.py`), so no script spells a key name itself (a test checks).

ARQ's own keys (`arq:job:<id>`, `arq:in-progress:<id>`, ...) are fixed by ARQ; ours all start
with the configured prefix (default `igo`). See docs/architecture.md for what each holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

ARQ_JOB_PREFIX = "arq:job:"
ARQ_RESULT_PREFIX = "arq:result:"
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"
ARQ_RETRY_PREFIX = "arq:retry:"

# name -> template; `{prefix}` is always the first part, the other fields are arguments.
KEY_TEMPLATES: MappingProxyType[str, str] = MappingProxyType(
    {
        "queue": "{prefix}:queue",
        "accounts": "{prefix}:accounts",
        "outcomes": "{prefix}:outcomes",
        "dead_letters": "{prefix}:dlq",
        "dead_letter_replays": "{prefix}:dlq:replays",
        "counters": "{prefix}:counters",
        "rates": "{prefix}:rates",
        "record": "{prefix}:idem:{key}",
        "job_id": "{prefix}:{key}",
        "arq_job": ARQ_JOB_PREFIX + "{prefix}:{key}",
        "arq_in_progress": ARQ_IN_PROGRESS_PREFIX + "{prefix}:{key}",
        "arq_retry": ARQ_RETRY_PREFIX + "{prefix}:{key}",
        "conversations": "{prefix}:convs",
        "sweep_lease": "{prefix}:sweep:lease",
        "sweep_cursor": "{prefix}:sweep:cursor",
        "workers": "{prefix}:workers",
        "running": "{prefix}:running:{worker}",
        "transit": "{prefix}:transit",
        "transit_fleet": "{prefix}:transit:fleet",
        "fleet_lease": "{prefix}:fleet:lease",
        "conversation": "{prefix}:conv:{account}:{recipient}",
        "echoes": "{prefix}:echo:{account}:{recipient}",
        "rate_window": "{prefix}:win:{account}:{rate_class}",
        "rate_tat": "{prefix}:tat:{account}:{rate_class}",
        "rate_tat_bulk": "{prefix}:tatb:{account}:{rate_class}",
        "rate_waiting": "{prefix}:prio:{account}:{rate_class}",
        "pause": "{prefix}:pause:{account}",
        "policy": "{prefix}:policy",
        "user_last_message": "{prefix}:lastmsg:{account}:{user}",
        "comment": "{prefix}:comment:{comment}",
        "echo_claims": "{prefix}:claimed:{account}:{recipient}",
        "disclosure": "{prefix}:disc:{account}:{user}",
        "media_probe": "{prefix}:media:{digest}",
        "webhooks": "{prefix}:webhooks",
        "inbound": "{prefix}:inbound",
        "inbound_seen": "{prefix}:inseen:{account}:{event}",
        "gateway_alive": "{prefix}:gateway:alive",
        "slow": "{prefix}:slow:{account}",
        "account": "{prefix}:acct:{account}",
        "account_index": "{prefix}:acctidx",
        "accounts_version": "{prefix}:acctver",
        "refresh_lease": "{prefix}:acctlease:{account}",
    }
)

_FIELD = re.compile(r"\{(\w+)\}")


def template_fields(template: str) -> list[str]:
    """The placeholders of a template, in order (`prefix` first)."""
    return _FIELD.findall(template)


def template_literals(template: str) -> list[str]:
    """The fixed text between placeholders (what a script must never spell itself)."""
    return [part for part in _FIELD.split(template)[::2] if part]


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "igo"

    def _key(self, name: str, **fields: str) -> str:
        return KEY_TEMPLATES[name].format(prefix=self.prefix, **fields)

    @property
    def queue(self) -> str:
        """The ARQ queue (a sorted set of job ids scored by run-at ms)."""
        return self._key("queue")

    @property
    def accounts(self) -> str:
        """Set of IG account ids producers may enqueue for: every registry account not
        removed (ids only, never tokens)."""
        return self._key("accounts")

    @property
    def outcomes(self) -> str:
        """Stream of terminal outcomes, one entry per accepted intent."""
        return self._key("outcomes")

    @property
    def dead_letters(self) -> str:
        """Stream of failed/rejected/expired/unknown intents with their reason."""
        return self._key("dead_letters")

    @property
    def dead_letter_replays(self) -> str:
        """Hash: DLQ entry id -> the idempotency key its replay was enqueued under."""
        return self._key("dead_letter_replays")

    @property
    def counters(self) -> str:
        """Hash of fleet-wide counters (e.g. ambiguous sends), for tests and status."""
        return self._key("counters")

    @property
    def rates(self) -> str:
        """Hash: slot spacing per rate class, published by workers for the enqueue script."""
        return self._key("rates")

    def record(self, idempotency_key: str) -> str:
        """Hash: the idempotency record and send journal of one intent."""
        return self._key("record", key=idempotency_key)

    def job_id(self, idempotency_key: str) -> str:
        """The ARQ job id of an intent (its idempotency key under our prefix)."""
        return self._key("job_id", key=idempotency_key)

    def arq_job(self, idempotency_key: str) -> str:
        """String: the ARQ job (JSON) of an intent."""
        return self._key("arq_job", key=idempotency_key)

    def arq_in_progress(self, idempotency_key: str) -> str:
        """String: ARQ's lease on a running job of an intent."""
        return self._key("arq_in_progress", key=idempotency_key)

    def arq_retry(self, idempotency_key: str) -> str:
        """String: ARQ's try counter of an intent's job."""
        return self._key("arq_retry", key=idempotency_key)

    @property
    def conversations(self) -> str:
        """Sorted set: every conversation with pending intents (key -> first enqueue ms)."""
        return self._key("conversations")

    @property
    def sweep_lease(self) -> str:
        """String with a TTL: the worker holding it runs the sweeper."""
        return self._key("sweep_lease")

    @property
    def workers(self) -> str:
        """Sorted set: worker id -> its last heartbeat (Redis ms); stale entries are trimmed."""
        return self._key("workers")

    @property
    def transit(self) -> str:
        """Hash: worker id -> the transit allowance (ms) it measured; the fleet's rate windows
        use the largest of the live workers' (`producers/lua/heartbeat.lua`)."""
        return self._key("transit")

    @property
    def transit_fleet(self) -> str:
        """String with a TTL: the fleet's transit allowance (ms), written by every heartbeat;
        each admission widens its window to it at once (`rate_window.lua`), so a worker that
        has not yet heard of a wider allowance never admits into a narrower window."""
        return self._key("transit_fleet")

    def running(self, worker_id: str) -> str:
        """Hash: idempotency key -> journal owner (job id + try) of every job this worker
        runs now; a live worker reclaims a dead one's (`producers/lua/reclaim.lua`)."""
        return self._key("running", worker=worker_id)

    @property
    def fleet_lease(self) -> str:
        """String: the worker that computes and serves the fleet's metrics now (a lease)."""
        return self._key("fleet_lease")

    @property
    def sweep_cursor(self) -> str:
        """String: where the sweeper continues in the conversation registry."""
        return self._key("sweep_cursor")

    def conversation(self, account_id: str, recipient_key: str) -> str:
        """Sorted set: pending intents (keys) of one conversation by sequence number."""
        return self._key("conversation", account=account_id, recipient=recipient_key)

    def echoes(self, account_id: str, recipient_id: str) -> str:
        """Sorted set of message echoes (webhooks) in one conversation, scored by time ms."""
        return self._key("echoes", account=account_id, recipient=recipient_id)

    def rate_window(self, account_id: str, rate_class: str) -> str:
        """Sorted set: sends of the current window (enforcement), scored by time ms."""
        return self._key("rate_window", account=account_id, rate_class=rate_class)

    def rate_tat(self, account_id: str, rate_class: str) -> str:
        """String: GCRA theoretical arrival time (ms) of the next slot (reservations)."""
        return self._key("rate_tat", account=account_id, rate_class=rate_class)

    def rate_tat_bulk(self, account_id: str, rate_class: str) -> str:
        """String: the bulk lane's own GCRA time, so a bulk backlog's reservations never
        push an interactive intent's slot back."""
        return self._key("rate_tat_bulk", account=account_id, rate_class=rate_class)

    def rate_waiting(self, account_id: str, rate_class: str) -> str:
        """String with a TTL: an interactive send waits for this full window; bulk sends
        leave it the next free place (`producers/lua/rate_window.lua`)."""
        return self._key("rate_waiting", account=account_id, rate_class=rate_class)

    @property
    def policy(self) -> str:
        """Hash: the window policy the workers publish for the enqueue script."""
        return self._key("policy")

    def user_last_message(self, account_id: str, user_id: str) -> str:
        """String (ms): when the user last messaged the account (webhook facts)."""
        return self._key("user_last_message", account=account_id, user=user_id)

    def comment(self, comment_id: str) -> str:
        """Hash: a comment's facts (account, user, created_ms, replied) from webhooks."""
        return self._key("comment", comment=comment_id)

    def echo_claims(self, account_id: str, recipient_id: str) -> str:
        """Sorted set: echo mids already attributed to a send of this conversation."""
        return self._key("echo_claims", account=account_id, recipient=recipient_id)

    def disclosure(self, account_id: str, user_id: str) -> str:
        """Hash: when the last automated / human-written message of a conversation went."""
        return self._key("disclosure", account=account_id, user=user_id)

    def media_probe(self, digest: str) -> str:
        """String with a TTL: what probing one media URL found (the digest is its SHA-256)."""
        return self._key("media_probe", digest=digest)

    @property
    def webhooks(self) -> str:
        """Stream: webhook bodies the gateway acknowledged and has yet to process."""
        return self._key("webhooks")

    @property
    def inbound(self) -> str:
        """Stream: normalised inbound events, for upstream consumers (docs/inbound.md)."""
        return self._key("inbound")

    def inbound_seen(self, account_id: str, event_id: str) -> str:
        """String with a TTL: this inbound event was processed (redeliveries count once)."""
        return self._key("inbound_seen", account=account_id, event=event_id)

    @property
    def gateway_alive(self) -> str:
        """String with a TTL: a gateway is processing webhooks (echoes flow)."""
        return self._key("gateway_alive")

    def pause(self, account_id: str) -> str:
        """String with a TTL: the account is paused fleet-wide while it exists."""
        return self._key("pause", account=account_id)

    def slow(self, account_id: str) -> str:
        """String with a TTL: the account runs at reduced rate while it exists."""
        return self._key("slow", account=account_id)

    def account(self, account_id: str) -> str:
        """Hash: the account registry entry (state, token expiry, refresh results; for a
        stored account its token, Fernet-encrypted). Never a plaintext token."""
        return self._key("account", account=account_id)

    @property
    def account_index(self) -> str:
        """Set of every account id with a registry entry (removed ones included)."""
        return self._key("account_index")

    @property
    def accounts_version(self) -> str:
        """String: bumped by every registry change, so workers reload only on change."""
        return self._key("accounts_version")

    def refresh_lease(self, account_id: str) -> str:
        """String with a TTL: the one worker refreshing this account's token holds it."""
        return self._key("refresh_lease", account=account_id)
