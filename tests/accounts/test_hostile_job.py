"""The send job against a registry whose token is not this worker's: what a 190 then does.

(Uses the worker tests' job bench: the real job, a real Redis, a scripted Graph.)
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ig_outbound.accounts.cipher import fingerprint
from ig_outbound.worker.tokens import LocalTokens, TokenBook
from tests.worker.conftest import ACCOUNT, TOKEN, JobBench, MakeBench, graph_error
from tests.worker.conftest import make_bench as make_bench  # (the fixture)

OTHER = "IGAA" + "o" * 40


@pytest.fixture
async def bench(make_bench: MakeBench) -> JobBench:
    return await make_bench()


async def _another_worker_syncs(bench: JobBench, token: str) -> None:
    """A second worker of the fleet, whose env holds another token for the account."""
    book = bench.services.tokens
    other = TokenBook(
        book.settings, book.registry, LocalTokens({ACCOUNT: SecretStr(token)}, None), None
    )
    await other.start()
    assert (await book.registry.get(ACCOUNT)).fingerprint == fingerprint(token)


async def test_a_refused_token_that_is_not_the_registrys_is_not_resent_at_once(
    bench: JobBench,
) -> None:
    await _another_worker_syncs(bench, OTHER)
    await bench.enqueue("h1")
    defers: list[float] = []
    for _ in range(4):
        bench.graph.script(graph_error(400, 190, 463))
        retry = await bench.retry("h1")
        defers.append(float(retry.defer_score or 0))
        if len(bench.graph.requests) < len(defers):
            break  # it stopped asking Graph: fine
    bearers = {r.headers["authorization"] for r in bench.graph.requests}
    assert bearers == {f"Bearer {TOKEN}"}
    # At most one request with the refused token, then a real wait (the account pause).
    assert len(bench.graph.requests) == 1, (len(bench.graph.requests), defers)
