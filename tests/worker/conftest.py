"""The send job in process: the real job function, its ARQ job and record in a real Redis
(written by the real producer client), and Graph played by an `httpx.MockTransport`."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.utils import ms_to_datetime
from pydantic import SecretStr

from ig_outbound.accounts.registry import AccountRegistry
from ig_outbound.graph import GraphClient
from ig_outbound.producers.enqueue import OutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.job import send_intent
from ig_outbound.worker.job_guard import load_job
from ig_outbound.worker.journal import Record
from ig_outbound.worker.services import Services
from ig_outbound.worker.settings import RetrySettings, Settings
from ig_outbound.worker.tokens import LocalTokens, TokenBook

ACCOUNT = "17841400000000301"
USER = "1254477777700301"
TOKEN = "IGAA" + "t" * 40
TEXT = "Your order has shipped"
# Distinct from the defaults and from each other, so a test sees which one was applied.
THROTTLE_PAUSE_S = 7.0
ACCOUNT_PAUSE_S = 9.0

# A scripted answer: an HTTP response, or a transport failure raised instead of one (or any
# other exception, e.g. CancelledError: the run is cut off as a SIGKILL would).
Answer = httpx.Response | type[BaseException]


def ok(message_id: str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx") -> httpx.Response:
    return httpx.Response(200, json={"recipient_id": USER, "message_id": message_id})


def graph_error(
    status: int, code: int, subcode: int | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    error: dict[str, Any] = {"message": f"error {code}", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


@dataclass
class FakeGraph:
    """Answers each request with the next scripted answer and keeps every request."""

    answers: deque[Answer] = field(default_factory=deque)
    requests: list[httpx.Request] = field(default_factory=list)

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        # Unscripted: the job sees a client error (an internal error); the request count,
        # which every test checks, tells.
        answer = self.answers.popleft()
        if isinstance(answer, httpx.Response):
            return answer
        if issubclass(answer, httpx.TransportError):
            raise answer("scripted transport failure", request=request)
        raise answer()


@dataclass
class JobBench:
    """One worker's services around a scripted Graph, and the producer client beside them."""

    services: Services
    client: OutboundClient
    graph: FakeGraph
    redis: aioredis.Redis

    @property
    def keys(self) -> Keys:
        return self.services.keys

    async def enqueue(self, key: str, **fields: Any) -> dict[str, Any]:
        """Enqueue a text intent to USER through the producer client (record, conversation
        and ARQ job as in production)."""
        intent: dict[str, Any] = {
            "idempotency_key": key,
            "account_id": ACCOUNT,
            "recipient": {"id": USER},
            "content": {"kind": "text", "text": TEXT},
            **fields,
        }
        result = await self.client.enqueue(intent)
        assert result.status == "queued", result
        return intent

    async def run(self, key: str, job_try: int = 1) -> str:
        """One run of the stored ARQ job, called as ARQ calls it."""
        job = load_job(await self.redis.get(self.keys.arq_job(key)))
        ctx = {
            "igo": self.services,
            "job_id": self.keys.job_id(key),
            "job_try": job_try,
            "enqueue_time": ms_to_datetime(job["et"]),
        }
        return await send_intent(ctx, *job["a"], **job["k"])

    async def retry(self, key: str, job_try: int = 1) -> Retry:
        """Run the job and return the `arq.Retry` it must end with."""
        with pytest.raises(Retry) as info:
            await self.run(key, job_try)
        return info.value

    async def record(self, key: str) -> Record:
        return await self.services.journal.read(key)

    async def pause_left_ms(self) -> int:
        return int(await self.redis.pttl(self.keys.pause(ACCOUNT)))

    async def dead_letters(self) -> list[dict[str, str]]:
        entries = await self.redis.xrange(self.keys.dead_letters)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]

    async def fleet_ambiguous_sends(self) -> int:
        return int(await resolve(self.redis.hget(self.keys.counters, "ambiguous_sends")) or 0)

    async def queue_score_ms(self, key: str) -> float | None:
        score: float | None = await self.redis.zscore(self.keys.queue, self.keys.job_id(key))
        return score


MakeBench = Callable[..., Awaitable[JobBench]]


@pytest.fixture
async def make_bench(aredis: aioredis.Redis) -> AsyncIterator[MakeBench]:
    """Build a bench; keyword arguments override worker settings (a private key prefix each)."""
    graphs: list[GraphClient] = []

    async def make(**overrides: Any) -> JobBench:
        retry = RetrySettings(
            throttle_pause_s=THROTTLE_PAUSE_S,
            account_pause_s=ACCOUNT_PAUSE_S,
            **overrides.pop("retry", {}),
        )
        settings = Settings(key_prefix=f"sj-{uuid.uuid4().hex[:12]}", retry=retry, **overrides)
        fake = FakeGraph()
        graph = GraphClient(settings.graph, transport=httpx.MockTransport(fake.handle))
        graphs.append(graph)
        registry = AccountRegistry(aredis, Keys(settings.key_prefix))
        local = LocalTokens({ACCOUNT: SecretStr(TOKEN)}, None)
        tokens = TokenBook(settings, registry, local, cipher=None)
        services = Services.build(settings, aredis, tokens, graph=graph)
        await tokens.start()
        await services.limiter.publish()
        client = OutboundClient(aredis, settings)
        await client.register_accounts(tokens.accounts())
        return JobBench(services, client, fake, aredis)

    yield make
    for graph in graphs:
        await graph.aclose()


@pytest.fixture
async def bench(make_bench: MakeBench) -> JobBench:
    """A bench with the default policies (ambiguous sends: `resend`)."""
    return await make_bench()


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
