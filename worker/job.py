"""The send job: one intent from the queue to exactly one terminal outcome.

    validate -> deadline -> not_before -> token (worker/tokens.py: removed? needs a new
    token?) -> media -> disclosure -> journal(begin: checks, rate slot, lease; one call)
             -> POST -> classify -> outcome | deferred re-run (arq.Retry)

Nothing escapes this function except `arq.Retry` (a deferred re-run) and cancellation (a
shutdown; ARQ re-queues the job). Waits (not_before, pauses, a busy lease) never use up an
attempt; only transient failures of real sends count against the budget, and ARQ's own
`max_tries` is set out of reach because it also counts restarts (arq-notes A.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import structlog
from arq import Retry

from ig_outbound.graph import ErrorClass, GraphResult, max_usage_pct, regain_access_s
from ig_outbound.producers.errors import IntentError, Problem
from ig_outbound.producers.inbound import claim_echo, message_fingerprint
from ig_outbound.producers.intent import MAX_TEXT_BYTES, MessageIntent, Priority
from ig_outbound.producers.outcome import DEAD_LETTER_STATUSES, GraphErrorInfo, OutcomeStatus
from ig_outbound.producers.rate_class import RateClass, rate_class
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.validation import parse_intent, readable_key
from ig_outbound.producers.wire import BAD_JOB_MARKER
from ig_outbound.worker import metrics
from ig_outbound.worker.backoff import full_jitter
from ig_outbound.worker.disclosure import (
    Disclosure,
    disclosure_body,
    disclosure_for,
    keeps_conversation_state,
)
from ig_outbound.worker.job_guard import owning_key
from ig_outbound.worker.journal import DISCLOSURE, MESSAGE, Begin, Phase
from ig_outbound.worker.limiter import Slot
from ig_outbound.worker.outcomes import make_outcome, observe
from ig_outbound.worker.payloads import build_body, media_urls
from ig_outbound.worker.services import Services
from ig_outbound.worker.tokens import Credential

log = structlog.get_logger("ig_outbound.job")

# After this many unexpected errors (a bug, or Redis failing mid-job) an intent fails
# instead of looping; the count lives in its record so it survives restarts.
MAX_INTERNAL_ERRORS = 5
# A rate slot this close is slept for in-process; further ones defer the job. A job whose
# reserved slot was taken anyway (rare) sleeps at most this many times before deferring.
SLOT_SLEEP_MAX_S = 0.25
MAX_SLOT_SLEEPS = 8
# A bulk send gives its place up sooner: one that keeps losing the window to interactive
# sends would otherwise hold a worker's job slot while it sleeps, and a bulk backlog that
# fell behind its schedule would fill every worker with sleeping jobs, an interactive reply
# waiting behind them for a free one. A new slot in the bulk lane costs no reply anything.
MAX_BULK_SLOT_SLEEPS = 1
# An interactive send sleeps up to this long for the window in-process (a deferral through
# ARQ's queue adds a poll and a re-run to a reply someone is waiting for; interactive sends
# are few, so the job slots they hold meanwhile are too).
INTERACTIVE_SLEEP_MAX_S = 1.0
# A slot older than half the transit allowance (at least this) when the request is about to
# leave is taken again (`_fresh_slot`), at most this many times.
STALE_SLOT_MIN_MS = 5.0
MAX_SLOT_RETAKES = 3
STALE_SLOT_WAIT_MAX_S = 2.0
# A job run before its conversation's turn parks this long at most (normally the end of the
# intent before it queues it again at once).
PARK_S = 3600.0
# How often an unconfirmed send looks for its echo, and how much earlier than the send's
# start an echo may be stamped (Meta's clock vs Redis's).
RECONCILE_POLL_S = 1.0
ECHO_CLOCK_SKEW_MS = 5_000


def _token_refused(result: GraphResult) -> bool:
    """Graph refused the token itself (190 and its subcodes), or it cannot be sent at all."""
    code = result.error.code if result.error is not None else None
    return code == 190 or result.classification.reason == "token_malformed"


def park_retry() -> Retry:
    """How a job the journal parked ends its run: ARQ must leave the queue score alone. A
    defer would be added to the score, which the end of the intent before may have just set
    to "now" (a lost wake-up would hold the conversation until its deadline)."""
    return Retry(defer=None)


class _DisclosureSent(Exception):
    """Internal: the disclosure phase is over (sent, or found sent); the message follows."""


class _Done(Exception):
    """Internal: the job reached its end (an outcome was published or already existed)."""

    def __init__(self, result: str) -> None:
        self.result = result


async def send_intent(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> str:
    """ARQ job entry point (registered as `ig_outbound.send`). Accepts any arguments so a
    malformed job from raw Redis ends as `rejected`, not as an ARQ error."""
    services: Services = ctx["igo"]
    job_id = str(ctx.get("job_id", "?"))
    job_try = int(ctx.get("job_try", 0) or 0)
    raw: Any = args[0] if len(args) == 1 and not kwargs else {"args": args, "kwargs": kwargs}
    metrics.JOBS_IN_FLIGHT.inc()
    run = _SendRun(services, raw, job_id=job_id, job_try=job_try)
    run.enqueued_ms = _enqueued_ms(ctx.get("enqueue_time"))
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, job_try=job_try, key=readable_key(raw)
    ):
        try:
            async with asyncio.timeout(services.settings.worker.job_timeout_s * 0.9):
                return await run.run()
        except _Done as done:
            return done.result
        except Retry:
            raise
        except Exception as exc:  # never crash the worker, never lose the intent
            return await _internal_error(services, raw, job_id, job_try, exc)
        finally:
            metrics.JOBS_IN_FLIGHT.dec()
            await run.unregister()


def _running_key(services: Services, job_id: str) -> str | None:
    """The idempotency key of a job id of ours (`<prefix>:<key>`), None for a stranger's."""
    prefix = services.keys.job_id("")
    key = job_id[len(prefix) :] if job_id.startswith(prefix) else ""
    return key if key and services.keys.job_id(key) == job_id else None


async def _internal_error(
    services: Services, raw: Any, job_id: str, job_try: int, exc: Exception
) -> str:
    """Retry later; after MAX_INTERNAL_ERRORS the intent whose job this is fails (counted in
    its record). A job of no intent has no record to count in: ARQ's try number bounds it."""
    log.error("job_internal_error", error_type=type(exc).__name__, error=str(exc)[:300])
    metrics.RETRIES.labels(reason="internal_error").inc()
    count = 0
    try:
        key = await owning_key(services, job_id)
        count = job_try if key is None else await _count_internal_error(services, key)
        if count >= MAX_INTERNAL_ERRORS:
            return await _give_up(services, key, job_id, raw, exc)
    except Exception as inner:  # Redis may be the thing failing; retry later
        log.warning("internal_error_bookkeeping_failed", error_type=type(inner).__name__)
    raise Retry(defer=full_jitter(count + 1, 0.5, 30.0)) from None


async def _count_internal_error(services: Services, key: str) -> int:
    record = services.keys.record(key)
    return int(await resolve(services.redis.hincrby(record, "internal_errors", 1)))


async def _give_up(
    services: Services, key: str | None, job_id: str, raw: Any, exc: Exception
) -> str:
    if key is None:
        problem = Problem("job", "bad_job", f"internal error: {type(exc).__name__}")
        await reject_job(services, job_id, [problem], raw)
        return "rejected"
    outcome = make_outcome(key=key, status=OutcomeStatus.FAILED, reason="internal_error")
    observe(outcome, await services.journal.finish(outcome, _dump(raw)))
    return "failed"


async def reject_job(
    services: Services, job_id: str, problems: list[Problem], raw: Any
) -> str | None:
    """End a job that holds no intent to send: the intent whose job it is (`owning_key`)
    ends `rejected` (reason `bad_job` or `invalid_intent`, by the first problem), which
    releases its conversation; a job of no intent becomes an unkeyed dead letter. The key
    is never read from the payload, which may carry another intent's. Returns the key ended."""
    reason = "bad_job" if problems and problems[0].type == "bad_job" else "invalid_intent"
    key = await owning_key(services, job_id)
    if key is None:
        outcome = make_outcome(
            key="", status=OutcomeStatus.REJECTED, reason=reason, problems=problems
        )
        await services.journal.dead_letter_unkeyed(outcome.model_dump_json(), _dump(raw))
        log.warning("rejected_unkeyed_job", reason=reason, problems=len(problems))
        return None
    record = await services.journal.read(key)
    outcome = make_outcome(
        key=key,
        status=OutcomeStatus.REJECTED,
        reason=reason,
        problems=problems,
        attempts=record.attempts,
        enqueued_ms=record.enqueued_ms,
    )
    observe(outcome, await services.journal.finish(outcome, _dump(raw)))
    return key


# ARQ's `et` (the enqueue script stamps it with Redis time); a raw job may carry 0 or junk.
_PLAUSIBLE_MS = 1_500_000_000_000


def _enqueued_ms(value: object) -> int | None:
    if isinstance(value, datetime):
        ms = int(value.timestamp() * 1000)
        return ms if ms > _PLAUSIBLE_MS else None
    return None


def _dump(raw: Any) -> str:
    try:
        text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str)
        text.encode()  # a lone surrogate (JSON "\ud800") cannot reach Redis as UTF-8
        return text
    except UnicodeEncodeError:
        return json.dumps(raw, separators=(",", ":"), default=str)  # as \u escapes
    except (TypeError, ValueError, RecursionError):
        return repr(raw)[:10_000]


class _SendRun:
    """One run of the send job for one intent."""

    def __init__(self, services: Services, raw: Any, *, job_id: str, job_try: int) -> None:
        self.s = services
        self.raw = raw
        self.job_id = job_id
        self.owner = f"{job_id}#{job_try}"
        # A dead worker's jobs are reclaimed (worker/fleet.py): a job of ours is listed in
        # `<prefix>:running:<worker>` by its first step that waits (the journal's begin
        # script, or `_register` before a media probe or the disclosure's decision) until
        # it ends (the finish script, else `unregister`). None: a stranger's job id.
        self.running = _running_key(services, job_id)
        self.registered = False  # listed, or maybe (a call that listed it was cut off)
        self.intent: MessageIntent
        self.cred: Credential
        self.body: dict[str, Any]
        self.enqueued_ms: int | None = None
        self.attempts = 0
        # The fleet's sends in the rate window when this run took its slot (None: no slot).
        self.sends_in_window: int | None = None
        # The slot this run's send was admitted with (the last `begin` that took one).
        self._slot: Slot | None = None
        # The journal phase this run is in: the disclosure (before) or the message.
        self.phase: Phase = MESSAGE
        # A disclosure that goes inside the message itself (a private reply: one per comment).
        self.inline_trigger: str | None = None

    async def run(self) -> str:
        intent = await self._validate()
        self.intent = intent
        deadline = self._deadline()
        await self._check_deadline(deadline)
        self._check_not_before(deadline)
        self.cred = await self._credential(deadline)
        await self._check_media(deadline)
        self.body = build_body(intent)
        disclosure = disclosure_for(self.s.settings.disclosure, intent)
        if disclosure is not None:
            await self._disclose(disclosure, deadline)
        await self._send(deadline)

    async def _credential(self, deadline: datetime) -> Credential:
        """The token to send with (worker/tokens.py). A removed account's intent fails; one
        whose token Graph refused waits for a new token (or its deadline), unsent."""
        account = self.intent.account_id
        book = self.s.tokens
        cred = await book.ensure(account)
        entry = book.entry(account)
        if entry is not None and entry.state == "removed":
            await self._finish(OutcomeStatus.FAILED, reason="account_removed")
        wait = self.s.settings.retry.account_pause_s
        if cred is None:
            # This worker holds no token for it: a stored one it cannot decrypt, or one in
            # another worker's tokens file. Wait for it (or the deadline).
            problem = book.corrupt().get(account)
            log.warning("no_token_for_account", account=account, problem=problem)
            raise self._defer(wait, deadline, "no_token")
        if (
            entry is not None
            and entry.state == "needs_reauth"
            and (entry.reauth_fp == cred.fingerprint)
        ):
            raise self._defer(wait, deadline, "needs_reauth")
        return cred

    async def _send(self, deadline: datetime) -> NoReturn:
        """One phase's send: a rate slot and the journal's lease (one call), the request, its
        answer (which always ends the phase: an outcome, a re-run, or `_DisclosureSent`)."""
        admitted_ms = await self._fresh_slot(await self._begin(deadline))
        result = await self.s.graph.send_message(self.intent.account_id, self.body, self.cred.token)
        if admitted_ms is not None and result.http_status is not None:
            # Its slot's admission (Redis's clock) -> Graph's answer: what the transit
            # allowance is measured on.
            self.s.transit.observe(self.s.clock.now_ms_exact() - admitted_ms)
        self._count_request(result)
        await self._handle(result, deadline)

    async def _fresh_slot(self, admitted_ms: float | None) -> float | None:
        """Pace at send time: a slot admitted long before the request leaves (this process
        stalled: a busy host, a long GC) would reach Graph later than the transit allowance
        covers, so a place is taken again now (a window that is full by then is waited for)
        and the old one is given back by the same call: the send is counted in the window at
        every moment. Returns the admission time the send goes with."""
        slot = self._slot
        if admitted_ms is None or slot is None:
            return admitted_ms
        held = slot.member  # the window's entry that counts this send now
        for _ in range(MAX_SLOT_RETAKES):
            limit_ms = max(self.s.limiter.transit_ms / 2, STALE_SLOT_MIN_MS)
            if self.s.clock.now_ms_exact() - admitted_ms <= limit_ms:
                return admitted_ms
            metrics.STALE_SLOTS_RETAKEN.inc()
            member, waited = f"{self.owner}:{time.monotonic_ns()}", 0.0
            while True:
                before = self.s.clock.now_ms()  # at or before the admission: the age errs long
                wait = await self.s.limiter.acquire(
                    slot.account_id, slot.rate_class, member, priority=slot.priority, replaces=held
                )
                # (Bounded: the lease is held meanwhile; a window that stays full this long,
                # a pause, lets the send go with the place it holds.)
                if wait <= 0 or waited >= STALE_SLOT_WAIT_MAX_S:
                    break
                await asyncio.sleep(wait)
                waited += wait
            if wait > 0:
                return admitted_ms
            held, admitted_ms = member, before  # (the old place was given back on admission)
        return admitted_ms

    # --- media -------------------------------------------------------------------------------

    async def _check_media(self, deadline: datetime) -> None:
        """Media by URL must fit the seed's table (worker/media/): a wrong type or size is
        refused unsent; a server that cannot be reached is tried again like a transient
        failure, then the intent fails."""
        urls = media_urls(self.intent)
        if not urls:
            return
        await self._register()  # a probe may take seconds
        verdict = await self.s.media.check(self.intent.kind, urls)
        if verdict.status == "rejected":
            metrics.MEDIA_REFUSALS.labels(reason=(verdict.reason or "").split(":")[0]).inc()
            await self._finish(OutcomeStatus.REJECTED, reason=verdict.reason)
        if verdict.status == "unreachable":
            failures = await self.s.journal.count(self.intent.idempotency_key, "failures")
            retry = self.s.settings.retry
            if failures >= retry.max_attempts:
                await self._finish(OutcomeStatus.FAILED, reason=verdict.reason)
            delay = full_jitter(max(failures, 1), retry.backoff_base_s, retry.backoff_cap_s)
            raise self._defer(delay, deadline, "media_unreachable")

    # --- the bot disclosure ------------------------------------------------------------------

    async def _disclose(self, disclosure: Disclosure, deadline: datetime) -> None:
        """Send the disclosure this message needs (decided once, in Redis), just before it;
        returns when the message may go. A private reply carries it inline instead."""
        user = self.intent.recipient.id or ""
        await self._register()
        decision = await self.s.journal.decide_disclosure(
            self.intent.idempotency_key,
            park_until_ms=self._park_until_ms(deadline),
            lapse_ms=disclosure.lapse_ms,
            user=user,
        )
        if decision.verdict != "decided":
            await self._preflight_ended(decision)
        if decision.state == "none":
            return
        if self.intent.recipient.comment_id is not None:
            await self._disclose_inline(disclosure, decision.trigger or "conversation_start")
            return
        if decision.state == "sent":
            return
        message_body = self.body
        self.phase, self.body = DISCLOSURE, disclosure_body(self.intent, disclosure)
        with contextlib.suppress(_DisclosureSent):
            await self._send(deadline)
        self.phase, self.body = MESSAGE, message_body

    async def _disclose_inline(self, disclosure: Disclosure, trigger: str) -> None:
        """A private reply is the one message a comment may get: the disclosure leads it."""
        message = self.body["message"]
        text = f"{disclosure.text}\n\n{message['text']}"
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            await self._finish(OutcomeStatus.REJECTED, reason="disclosure_does_not_fit")
        self.body = {**self.body, "message": {**message, "text": text}}
        self.inline_trigger = trigger

    async def _disclosure_sent(self, mid: str | None, user: str | None) -> None:
        """The disclosure went (confirmed by Graph or by its echo): kept, counted, on."""
        await self.s.journal.settle_disclosure(
            self.intent.idempotency_key, mid=mid, user=user or self.intent.recipient.id or ""
        )
        trigger = self.inline_trigger or (
            await self.s.journal.disclosure_trigger(self.intent.idempotency_key)
        )
        metrics.DISCLOSURES.labels(trigger=trigger or "").inc()
        log.info("disclosure_sent", trigger=trigger, message_id=mid)

    # --- checks before sending --------------------------------------------------------------

    async def _validate(self) -> MessageIntent:
        if isinstance(self.raw, dict) and BAD_JOB_MARKER in self.raw:
            reason = str(self.raw[BAD_JOB_MARKER])
            await self._reject_raw([Problem("job", "bad_job", reason)])
        try:
            intent = parse_intent(self.raw)
        except IntentError as exc:
            await self._reject_raw(exc.problems)
        if self.s.keys.job_id(intent.idempotency_key) != self.job_id:
            # Someone else's intent in this job: it must neither send nor end that intent.
            message = "the intent's idempotency key is not the one of this job id"
            await self._reject_raw([Problem("job", "bad_job", message)])
        return intent

    async def _reject_raw(self, problems: list[Problem]) -> NoReturn:
        await reject_job(self.s, self.job_id, problems, self.raw)
        raise _Done("rejected")

    def _deadline(self) -> datetime:
        enqueued = (
            datetime.fromtimestamp(self.enqueued_ms / 1000, UTC)
            if self.enqueued_ms
            else self.s.clock.now()
        )
        return self.intent.not_after or enqueued + timedelta(
            seconds=self.s.settings.default_deadline_s
        )

    async def _check_deadline(self, deadline: datetime) -> None:
        if self.s.clock.now() >= deadline:
            await self._finish(OutcomeStatus.EXPIRED, reason="deadline_passed")

    def _defer(self, seconds: float, deadline: datetime, reason: str) -> Retry:
        """A re-run after `seconds`, never later than just past the deadline."""
        to_deadline = (deadline - self.s.clock.now()).total_seconds() + 0.05
        metrics.RETRIES.labels(reason=reason).inc()
        log.debug("deferred", reason=reason, seconds=round(seconds, 3))
        return Retry(defer=max(min(seconds, to_deadline), 0.01))

    def _check_not_before(self, deadline: datetime) -> None:
        nb = self.intent.not_before
        if nb is not None:
            wait = (nb - self.s.clock.now()).total_seconds()
            if wait > 0:
                raise self._defer(wait, deadline, "not_before")

    def _listed_on(self) -> str:
        """The worker id a script is to list this job under ('' for a stranger's job id);
        counted as listed before the call, which may be cut off after Redis ran it."""
        if self.running is None:
            return ""
        self.registered = True
        return self.s.worker_id

    async def _register(self) -> None:
        """List the job as running before a step that waits on more than the begin script."""
        if self.running is not None and not self.registered:
            self.registered = True
            await resolve(
                self.s.redis.hset(self.s.keys.running(self.s.worker_id), self.running, self.owner)
            )

    async def unregister(self) -> None:
        """The job ends without the finish script (a re-run, an error): leave the list."""
        if self.running is not None and self.registered:
            with contextlib.suppress(Exception):  # Redis away: reclaim finds nothing
                await resolve(
                    self.s.redis.hdel(self.s.keys.running(self.s.worker_id), self.running)
                )
            self.registered = False

    def _rate_class(self) -> RateClass:
        if self.phase == DISCLOSURE:
            return RateClass.LIGHT  # the disclosure is a text message
        return rate_class(self.intent.kind, self.intent.recipient.comment_id is not None)

    def _park_until_ms(self, deadline: datetime) -> int:
        park_until = min(self.s.clock.now() + timedelta(seconds=PARK_S), deadline)
        return int(park_until.timestamp() * 1000) + 50

    async def _begin(self, deadline: datetime) -> float | None:
        """Take a send slot of the account's budget (fleet-wide) and the journal's lease, in
        one script call after the record's checks; or wait for the slot.

        A short wait is slept here; a longer one (a backlog, a pause) defers the job to its
        reserved slot, which frees this worker and spends no attempt. Answers when (Redis ms)
        the slot was taken, if the send follows it at once."""
        key = self.intent.idempotency_key
        park_until_ms = self._park_until_ms(deadline)
        cls = self._rate_class()
        sleeps = 0
        bulk = self.intent.priority is Priority.BULK
        max_sleeps = MAX_BULK_SLOT_SLEEPS if bulk else MAX_SLOT_SLEEPS
        sleep_max_s = SLOT_SLEEP_MAX_S if bulk else INTERACTIVE_SLEEP_MAX_S
        while True:
            # After a few short waits it gives up its place and reserves a new slot.
            reserve = sleeps >= max_sleeps
            slot = self.s.limiter.slot(
                self.intent.account_id, cls, f"{self.owner}:{time.monotonic_ns()}",
                reserve=reserve, priority=self.intent.priority,
            )  # fmt: skip
            begin = await self.s.journal.begin(
                key, self.owner, self.s.lease_s(), park_until_ms=park_until_ms,
                phase=self.phase, slot=slot, worker_id=self._listed_on(),
            )  # fmt: skip
            self._slot = slot
            if begin.verdict != "wait":
                break
            if begin.retry_in_s > sleep_max_s or reserve:
                raise self._defer(begin.retry_in_s, deadline, "rate_slot")
            metrics.RATE_WAITS.labels(rate_class=cls.value).inc()
            await asyncio.sleep(begin.retry_in_s)
            sleeps += 1
        if begin.verdict == "ambiguous":
            # The slot is taken (by the call that said so): the take-over sends in it.
            await self._settle_ambiguous(begin, deadline)
            begin = await self.s.journal.begin(
                key, self.owner, self.s.lease_s(), park_until_ms=park_until_ms,
                take_over=True, phase=self.phase, worker_id=self._listed_on(),
            )  # fmt: skip
        if begin.verdict == "done" and self.phase == DISCLOSURE:
            raise _DisclosureSent  # an earlier run sent it (or it turned out unneeded)
        if begin.verdict == "busy":
            raise self._defer(begin.retry_in_s + 0.05, deadline, "send_in_progress")
        if begin.verdict not in ("go", "busy"):
            await self._preflight_ended(begin)
        self.sends_in_window = begin.sends_in_window
        if self.phase == MESSAGE:
            self.attempts = begin.attempt
            if begin.attempt == 1:
                self._observe_queue_wait()
        # (A take-over's `go` took no slot: its send follows a settling, not an admission.)
        return begin.at_ms if begin.sends_in_window is not None else None

    def _observe_queue_wait(self) -> None:
        """Enqueue (or not_before, when later) to the first send attempt of its message."""
        if self.enqueued_ms is None:
            return
        since_ms = float(self.enqueued_ms)
        if self.intent.not_before is not None:
            since_ms = max(since_ms, self.intent.not_before.timestamp() * 1000)
        waited_s = (self.s.clock.now_ms() - since_ms) / 1000
        metrics.QUEUE_WAIT_SECONDS.observe(max(waited_s, 0.0))

    async def _preflight_ended(self, begin: Begin) -> NoReturn:
        """The journal said this run must not send (see `producers/lua/preflight.lua`)."""
        if begin.verdict == "done":
            raise _Done("duplicate_run")
        if begin.verdict == "window_closed":
            # `state` is why: the window closed (or, for a private reply, its comment was
            # answered already): no API call, Graph would refuse it (10/2534022).
            metrics.WINDOW_REFUSALS.labels(stage="send", reason=begin.state or "").inc()
            status = (
                OutcomeStatus.REJECTED
                if begin.state == "private_reply_already_sent"
                else OutcomeStatus.EXPIRED
            )
            await self._finish(status, reason=begin.state)
        if begin.verdict == "account_removed":
            await self._finish(OutcomeStatus.FAILED, reason="account_removed")
        if begin.verdict == "gone":
            # Its record was evicted or lost: whether it was sent cannot be known, so it is
            # not sent again; the sweeper moves its conversation on.
            log.error("record_lost")
            await self._finish(OutcomeStatus.FAILED, reason="record_lost")
        if begin.verdict == "not_its_turn":
            # Earlier intents of the conversation are pending: the script parked the job until
            # the end of the one before queues it (or until its deadline).
            metrics.RETRIES.labels(reason="conversation_order").inc()
            raise park_retry()
        raise AssertionError(f"unexpected journal verdict {begin.verdict!r}")

    async def _settle_ambiguous(self, begin: Begin, deadline: datetime) -> None:
        """An earlier send may have reached Graph (a run died mid-send or got no answer).
        Returns only when the intent is to be resent (then under this run's lease)."""
        if self.phase == MESSAGE:
            self.attempts = begin.attempt
        await self._ambiguous_policy(begin, deadline)

    # --- after the answer -------------------------------------------------------------------

    def _count_request(self, result: GraphResult) -> None:
        code = result.error.code if result.error and result.error.code is not None else ""
        metrics.GRAPH_REQUESTS.labels(
            error_class=result.classification.error_class.value, code=str(code)
        ).inc()
        metrics.GRAPH_REQUEST_SECONDS.observe(result.elapsed_s)
        if result.ok and self.intent.account_id in self.s.settings.metrics_accounts:
            metrics.ACCOUNT_SENDS.labels(
                account=self.intent.account_id, rate_class=self._rate_class().value
            ).inc()

    async def _handle(self, result: GraphResult, deadline: datetime) -> NoReturn:
        """Act on the answer by its class; every branch ends the run (outcome or re-run)."""
        await self._heed_usage(result)
        if result.ok:
            await self._on_success(result)
        if result.ambiguous:
            await self._on_ambiguous(result, deadline)
        error_class = result.classification.error_class
        if error_class is ErrorClass.THROTTLED:
            await self._on_throttled(result, deadline)
        if error_class is ErrorClass.ACCOUNT:
            await self._on_account_problem(result, deadline)
        if error_class is ErrorClass.TRANSIENT:
            await self._on_transient(result, deadline)
        await self._on_permanent(result)

    async def _on_success(self, result: GraphResult) -> NoReturn:
        await self._confirmed(result.message_id, result.recipient_id)

    async def _confirmed(self, mid: str | None, recipient_id: str | None, **why: Any) -> NoReturn:
        """This phase's send reached Graph (its answer, or its echo): the disclosure is kept
        and the message follows (`_DisclosureSent`); the message ends the intent `sent`."""
        if self.phase == DISCLOSURE:
            await self._disclosure_sent(mid, recipient_id)
            raise _DisclosureSent
        if self.inline_trigger is not None:
            await self._disclosure_sent(mid, recipient_id)
        await self._finish(OutcomeStatus.SENT, message_id=mid, recipient_id=recipient_id, **why)

    async def _on_ambiguous(self, result: GraphResult, deadline: datetime) -> None:
        """This run's request left but no answer says what happened to it. Returns only when
        the policy resends; the send then goes on as the failure its class says (transient:
        a counted failure and a backoff before the resend)."""
        await self._ambiguous_policy(result, deadline)

    async def _on_throttled(self, result: GraphResult, deadline: datetime) -> NoReturn:
        """Meta's rate limit: pause the account fleet-wide for as long as Meta says (or the
        setting's fallback) and wait; it spends no attempt."""
        pause = regain_access_s(result.usage) or self.s.settings.retry.throttle_pause_s
        await self._pause(pause, result.classification.reason)
        await self.s.journal.release(
            self.intent.idempotency_key, self.owner, count_failure=False, phase=self.phase
        )
        raise self._defer(pause, deadline, "throttled")

    async def _on_account_problem(self, result: GraphResult, deadline: datetime) -> NoReturn:
        """Token or account trouble hits every intent of the account: pause it and wait (its
        intents expire at their deadlines if nobody fixes it); it spends no attempt."""
        reason = result.classification.reason
        pause = self.s.settings.retry.account_pause_s
        verdict: str | None = None
        if _token_refused(result):
            verdict = await self.s.tokens.report_invalid(
                self.intent.account_id, self.cred, reason, int(pause * 1000)
            )
            if verdict == "stale":  # replaced meanwhile (a refresh): send with the new one
                await self.s.journal.release(
                    self.intent.idempotency_key, self.owner, count_failure=False, phase=self.phase
                )
                raise self._defer(0.05, deadline, "token_replaced")
            if verdict == "marked":
                metrics.ACCOUNT_PAUSES.labels(reason=reason).inc()
                log.error("account_needs_reauth", account=self.intent.account_id, reason=reason)
        if verdict in (None, "unknown", "refused_here"):  # (needs_reauth paused it already)
            await self._pause(pause, reason)
        log.error("account_problem", account=self.intent.account_id, reason=reason)
        await self.s.journal.release(
            self.intent.idempotency_key, self.owner, count_failure=False, phase=self.phase
        )
        raise self._defer(pause, deadline, "account_problem")

    async def _on_transient(self, result: GraphResult, deadline: datetime) -> NoReturn:
        """Count a failure and retry after a capped, jittered backoff, until the budget ends."""
        cls = result.classification
        failures = await self.s.journal.release(
            self.intent.idempotency_key, self.owner, count_failure=True, phase=self.phase
        )
        retry = self.s.settings.retry
        # `max_attempts` sends in all; some errors allow fewer (e.g. "transient once").
        exhausted = failures >= retry.max_attempts
        if exhausted or cls.effective_class(failures) is not ErrorClass.TRANSIENT:
            await self._finish(
                OutcomeStatus.FAILED,
                reason=self._failed(cls.reason),
                error=self._error_info(result),
            )
        delay = full_jitter(failures, retry.backoff_base_s, retry.backoff_cap_s)
        raise self._defer(delay, deadline, "transient")

    async def _on_permanent(self, result: GraphResult) -> NoReturn:
        await self._finish(
            OutcomeStatus.FAILED,
            reason=self._failed(result.classification.reason),
            error=self._error_info(result),
        )

    def _failed(self, reason: str) -> str:
        """A failed disclosure fails its message (it must not go without it): say which."""
        return f"disclosure_failed:{reason}" if self.phase == DISCLOSURE else reason

    async def _heed_usage(self, result: GraphResult) -> None:
        """Meta's usage header near 100 % while someone else spends the account's budget
        (the usage is well above the fleet's own sends in the window): slow the account
        fleet-wide for a while. The fleet's own full pace alone reads near 100 %, and is no
        reason to slow down (the rate windows keep it under the limit)."""
        usage = max_usage_pct(result.usage)
        rate = self.s.settings.rate
        slow = usage >= rate.slowdown_usage_pct
        if slow and self.sends_in_window is not None:
            own = self.s.limiter.own_usage_pct(self._rate_class(), self.sends_in_window)
            slow = usage - own >= rate.slowdown_others_pct
        if slow and await self.s.limiter.slow_down(self.intent.account_id):
            metrics.ACCOUNT_SLOWDOWNS.inc()
            log.warning("account_slowed", account=self.intent.account_id, usage_pct=usage)

    async def _pause(self, seconds: float, reason: str) -> None:
        if await self.s.pauses.pause(self.intent.account_id, seconds, reason):
            metrics.ACCOUNT_PAUSES.labels(reason=reason).inc()
            log.warning("account_paused", account=self.intent.account_id, seconds=seconds)

    @staticmethod
    def _error_info(result: GraphResult) -> GraphErrorInfo:
        err = result.error
        return GraphErrorInfo(
            http_status=result.http_status,
            code=err.code if err else None,
            subcode=err.subcode if err else None,
            error_class=result.classification.error_class.value,
            message=(err.message if err else result.classification.reason)[:500],
            fbtrace_id=err.fbtrace_id if err else None,
        )

    # --- ambiguous sends --------------------------------------------------------------------

    async def _ambiguous_policy(self, send: Begin | GraphResult, deadline: datetime) -> None:
        """`IG_OUTBOUND_AMBIGUOUS_POLICY` for a send that may have reached Graph unconfirmed:
        an earlier run's (`Begin`, found by the journal) or this run's (`GraphResult`, no
        answer). Returns only when the intent is to be resent, counted as an ambiguous send."""
        policy = self.s.settings.ambiguous_policy
        if policy == "auto":
            # Reconciling needs echoes: they flow while a gateway processes webhooks.
            alive = await resolve(self.s.redis.exists(self.s.keys.gateway_alive))
            policy = "reconcile" if alive else "resend"
        if policy == "fail":
            metrics.AMBIGUOUS_SENDS.labels(decision="fail").inc()
            error = self._error_info(send) if isinstance(send, GraphResult) else None
            await self._finish(OutcomeStatus.UNKNOWN, reason="ambiguous_send", error=error)
        if policy == "reconcile":
            await self._reconcile(send, deadline)
        metrics.AMBIGUOUS_SENDS.labels(decision="resend").inc()
        await self.s.journal.mark_ambiguous(self.intent.idempotency_key)
        cause = send.classification.reason if isinstance(send, GraphResult) else "earlier_run"
        log.warning("ambiguous_send_resent", policy=policy, cause=cause)

    async def _reconcile(self, send: Begin | GraphResult, deadline: datetime) -> None:
        """`reconcile`: settle the send by its echo webhook, waiting for one up to the grace
        period; returns (to resend) when the grace period is over without one."""
        if isinstance(send, GraphResult):
            # Settled on a later run: by its echo, or resent after the grace period.
            await self.s.journal.unconfirm(
                self.intent.idempotency_key, self.owner, phase=self.phase
            )
            raise self._defer(RECONCILE_POLL_S, deadline, "reconciling")
        mid = await self._claim_echo(since_ms=send.sending_since_ms - ECHO_CLOCK_SKEW_MS)
        if mid is not None:
            metrics.AMBIGUOUS_SENDS.labels(decision="reconciled").inc()
            await self._confirmed(mid, None, reason="reconciled")
        left = self.s.settings.reconcile_grace_s - send.ambiguous_for_s
        if left > 0:
            raise self._defer(min(left, RECONCILE_POLL_S), deadline, "reconciling")

    async def _claim_echo(self, since_ms: int) -> str | None:
        """The mid of this intent's echo in its conversation since `since_ms`, claimed so
        no other send counts it (none for a comment reply: no conversation id to look in)."""
        if self.intent.recipient.id is None:
            return None
        return await claim_echo(
            self.s.redis,
            self.s.keys,
            account_id=self.intent.account_id,
            recipient_id=self.intent.recipient.id,
            since_ms=since_ms,
            fingerprint=message_fingerprint(self.body.get("message")),
            claimer=self.intent.idempotency_key,
            claim_field=f"{self.phase}echo_claim",
        )

    # --- ending -----------------------------------------------------------------------------

    async def _finish(
        self,
        status: OutcomeStatus,
        *,
        reason: str | None = None,
        message_id: str | None = None,
        recipient_id: str | None = None,
        error: GraphErrorInfo | None = None,
    ) -> NoReturn:
        """Publish the terminal outcome (at most once, atomically) and end the job."""
        key = self.intent.idempotency_key
        if status is not OutcomeStatus.SENT and self.attempts == 0:
            # Ending before a send in this run: earlier runs may have made attempts.
            self.attempts = (await self.s.journal.read(key)).attempts
        discloses = keeps_conversation_state(self.s.settings.disclosure, self.intent.account_id)
        outcome = make_outcome(
            key=self.intent.idempotency_key,
            status=status,
            intent=self.intent,
            reason=reason,
            message_id=message_id,
            recipient_id=recipient_id,
            error=error,
            attempts=self.attempts,
            enqueued_ms=self.enqueued_ms,
            now_ms=self.s.clock.now_ms(),
            disclosure=await self.s.journal.disclosure(key) if discloses else None,
        )
        # The finish script also takes the job off this worker's running list.
        worker_id = self.s.worker_id if self.registered else ""
        raw = _dump(self.raw) if status in DEAD_LETTER_STATUSES else ""  # kept only there
        # This run is the intent's own ARQ job: the script ends it too (one round trip less).
        retire = self.s.keys.job_id(key) == self.job_id
        published = await self.s.journal.finish(
            outcome, raw, keep_conversation=discloses, worker_id=worker_id, retire_job=retire
        )
        if retire:
            self.s.retired.add(self.job_id)
        self.registered = False
        observe(outcome, published)
        raise _Done(status.value if published else "duplicate_run")
