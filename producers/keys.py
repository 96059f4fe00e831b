"""Every Redis key name ig-outbound uses, defined once.

ARQ's own keys (`arq:job:<id>`, `arq:in-progress:<id>`, ...) are fixed by ARQ; ours all start
with the configured prefix (default `igo`). See docs/architecture.md for what each holds.
"""

from __future__ import annotations

from dataclasses import dataclass

ARQ_JOB_PREFIX = "arq:job:"
ARQ_RESULT_PREFIX = "arq:result:"
ARQ_IN_PROGRESS_PREFIX = "arq:in-progress:"
ARQ_RETRY_PREFIX = "arq:retry:"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "igo"

    @property
    def queue(self) -> str:
        """The ARQ queue (a sorted set of job ids scored by run-at ms)."""
        return f"{self.prefix}:queue"

    @property
    def accounts(self) -> str:
        """Set of IG account ids the worker fleet holds tokens for (ids only, never tokens)."""
        return f"{self.prefix}:accounts"

    @property
    def outcomes(self) -> str:
        """Stream of terminal outcomes, one entry per accepted intent."""
        return f"{self.prefix}:outcomes"

    @property
    def dead_letters(self) -> str:
        """Stream of failed/rejected/expired/unknown intents with their reason."""
        return f"{self.prefix}:dlq"

    @property
    def dead_letter_replays(self) -> str:
        """Hash: DLQ entry id -> the idempotency key its replay was enqueued under."""
        return f"{self.prefix}:dlq:replays"

    @property
    def counters(self) -> str:
        """Hash of fleet-wide counters (e.g. ambiguous sends), for tests and status."""
        return f"{self.prefix}:counters"

    def record(self, idempotency_key: str) -> str:
        """Hash: the idempotency record and send journal of one intent."""
        return f"{self.prefix}:idem:{idempotency_key}"

    def job_id(self, idempotency_key: str) -> str:
        """The ARQ job id of an intent (its idempotency key under our prefix)."""
        return f"{self.prefix}:{idempotency_key}"

    def arq_job(self, idempotency_key: str) -> str:
        return ARQ_JOB_PREFIX + self.job_id(idempotency_key)

    def echoes(self, account_id: str, recipient_id: str) -> str:
        """Sorted set of message echoes (webhooks) in one conversation, scored by time ms."""
        return f"{self.prefix}:echo:{account_id}:{recipient_id}"

    @property
    def rates(self) -> str:
        """Hash: slot spacing per rate class, published by workers for the enqueue script."""
        return f"{self.prefix}:rates"

    def rate_window(self, account_id: str, rate_class: str) -> str:
        """Sorted set: sends of the current window (enforcement), scored by time ms."""
        return f"{self.prefix}:win:{account_id}:{rate_class}"

    def rate_tat(self, account_id: str, rate_class: str) -> str:
        """String: GCRA theoretical arrival time (ms) of the next slot (reservations)."""
        return f"{self.prefix}:tat:{account_id}:{rate_class}"

    def slow(self, account_id: str) -> str:
        """String with a TTL: the account runs at reduced rate while it exists."""
        return f"{self.prefix}:slow:{account_id}"

    def conversation(self, account_id: str, recipient_key: str) -> str:
        """Sorted set: pending intents (keys) of one conversation by sequence number."""
        return f"{self.prefix}:conv:{account_id}:{recipient_key}"

    def pause(self, account_id: str) -> str:
        """String with a TTL: the account is paused fleet-wide while it exists."""
        return f"{self.prefix}:pause:{account_id}"
