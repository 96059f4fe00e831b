"""GraphClient against a real HTTP server (Starlette under uvicorn on a loopback port)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from ig_outbound.graph import (
    TRANSIENT_CAP,
    Classification,
    ErrorClass,
    GraphClient,
    GraphClientError,
    GraphResult,
)
from ig_outbound.graph.settings import GraphSettings
from ig_outbound.worker.settings import WorkerTuning

TOKEN = "IGAAtestSECRETtoken.0123456789-abcdef_XYZ"
IG_ID = "17841400000000001"
IGSID = "1254477777772919"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjEyNTAy"
TEXT_BODY: dict[str, Any] = {"recipient": {"id": IGSID}, "message": {"text": "Hi there"}}
OK_BODY = {"recipient_id": IGSID, "message_id": MID}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    http_version: str
    client_port: int = 0  # the connection it came on


Handler = Callable[[Recorded], Awaitable[Response]]


async def answer_ok(_: Recorded) -> Response:
    return JSONResponse(OK_BODY)


@dataclass
class FakeGraph:
    """What the server saw, and how it answers: each test sets ``handler``."""

    base_url: str
    requests: list[Recorded] = field(default_factory=list)
    handler: Handler = answer_ok
    release: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=dict(request.headers),
            body=await request.body(),
            http_version=str(request.scope["http_version"]),
            client_port=request.client.port if request.client else 0,
        )
        self.requests.append(recorded)
        self.received.set()
        return await self.handler(recorded)

    async def hang(self, _: Recorded) -> Response:
        """Answer only once the test is over (or released), far beyond any read timeout."""
        await asyncio.wait_for(self.release.wait(), timeout=10)
        return JSONResponse(OK_BODY)

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        async def handler(_: Recorded) -> Response:
            if isinstance(body, str | bytes):
                return PlainTextResponse(body, status_code=status, headers=headers)
            return JSONResponse(body, status_code=status, headers=headers)

        self.handler = handler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest_asyncio.fixture(scope="session")
async def graph_server() -> AsyncIterator[FakeGraph]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before serving: no race for the port
    fake = FakeGraph(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = Starlette(routes=[Route("/{path:path}", fake.endpoint, methods=["GET", "POST"])])
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,  # leave the process' logging alone
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), "test server failed to start"
        await asyncio.sleep(0.01)
    yield fake
    fake.release.set()
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
def graph(graph_server: FakeGraph) -> Iterator[FakeGraph]:
    graph_server.requests.clear()
    graph_server.handler = answer_ok
    graph_server.release = asyncio.Event()
    graph_server.received = asyncio.Event()
    yield graph_server
    graph_server.release.set()  # frees handlers still hanging


def settings_for(graph: FakeGraph, **overrides: Any) -> GraphSettings:
    return GraphSettings(base_url=graph.base_url, **{"read_timeout_s": 2.0, **overrides})


@pytest_asyncio.fixture
async def client(graph: FakeGraph) -> AsyncIterator[GraphClient]:
    async with GraphClient(settings_for(graph)) as graph_client:
        yield graph_client


# --- connections ------------------------------------------------------------------------


async def test_a_worker_at_full_concurrency_keeps_its_connections(graph: FakeGraph) -> None:
    """A worker runs up to `max_jobs` sends at once: the pool keeps that many connections
    alive between bursts instead of closing the extra ones after each request and opening
    them again (a TCP handshake and a new HTTP connection per send, on both sides)."""
    concurrency = WorkerTuning().max_jobs

    async def slow_ok(_: Recorded) -> Response:
        await asyncio.sleep(0.05)  # the burst's requests overlap
        return JSONResponse(OK_BODY)

    graph.handler = slow_ok
    async with GraphClient(settings_for(graph)) as graph_client:
        for _ in range(3):
            sends = [graph_client.send_message(IG_ID, TEXT_BODY, TOKEN) for _ in range(concurrency)]
            assert all(r.ok for r in await asyncio.gather(*sends))
    connections = {r.client_port for r in graph.requests}
    assert len(graph.requests) == 3 * concurrency
    assert len(connections) <= concurrency, f"{len(connections)} connections for 3 bursts"


# --- what goes out ------------------------------------------------------------------------


async def test_posts_json_to_account_path_with_bearer_header(
    graph: FakeGraph, client: GraphClient
) -> None:
    await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    [sent] = graph.requests
    assert sent.method == "POST"
    assert sent.path == f"/v23.0/{IG_ID}/messages"
    assert sent.query == ""
    assert sent.http_version == "1.1"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert TOKEN not in sent.path
    assert TOKEN.encode() not in sent.body
    assert json.loads(sent.body) == TEXT_BODY


async def test_me_endpoint(graph: FakeGraph) -> None:
    async with GraphClient(settings_for(graph, use_me_endpoint=True)) as client:
        result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.ok
    assert [r.path for r in graph.requests] == ["/v23.0/me/messages"]
    assert graph.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_api_version_comes_from_settings(graph: FakeGraph) -> None:
    async with GraphClient(settings_for(graph, api_version="v25.0")) as client:
        await client.send_message(IG_ID, TEXT_BODY, SecretStr(TOKEN))
    assert graph.requests[0].path == f"/v25.0/{IG_ID}/messages"
    assert graph.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_body_is_sent_verbatim(graph: FakeGraph, client: GraphClient) -> None:
    body: dict[str, Any] = {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {
            "text": 'Grüße 👋 "quoted" \\ back',
            "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "Y"}],
        },
        "reply_to": {"mid": MID},
    }
    await client.send_message(IG_ID, body, TOKEN)
    sent = graph.requests[0].body
    assert json.loads(sent) == body
    assert "Grüße 👋".encode() in sent  # UTF-8 as is, not \\u-escaped


def test_path_for_quotes_odd_ids() -> None:
    client_settings = GraphSettings(base_url="http://127.0.0.1:9")
    client = GraphClient(client_settings)
    assert client.path_for(IG_ID) == f"/v23.0/{IG_ID}/messages"
    assert (
        client.path_for("1/../x?access_token=y") == "/v23.0/1%2F..%2Fx%3Faccess_token%3Dy/messages"
    )
    with pytest.raises(ValueError, match="empty"):
        client.path_for("")


async def test_unserialisable_body_is_a_caller_error(graph: FakeGraph, client: GraphClient) -> None:
    with pytest.raises(TypeError):
        await client.send_message(IG_ID, {"x": object()}, TOKEN)
    with pytest.raises(ValueError):
        await client.send_message(IG_ID, {"x": float("nan")}, TOKEN)
    assert graph.requests == []


# --- answers ------------------------------------------------------------------------------


async def test_success_with_message_id(graph: FakeGraph, client: GraphClient) -> None:
    buc = {
        IG_ID: [
            {
                "type": "instagram",
                "call_count": 12,
                "total_cputime": 3,
                "total_time": 4,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }
    graph.answer(200, OK_BODY, {"X-Business-Use-Case-Usage": json.dumps(buc)})
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.ok
    assert (result.http_status, result.recipient_id, result.message_id) == (200, IGSID, MID)
    assert result.classification == Classification(ErrorClass.SUCCESS, "sent")
    assert result.error_class is ErrorClass.SUCCESS
    assert not result.ambiguous
    assert result.error is None and result.transport is None
    assert result.usage[IG_ID].call_count == 12.0
    assert 0 < result.elapsed_s < 2


async def test_success_without_message_id_for_sender_actions(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.answer(200, {"recipient_id": IGSID})
    react = {
        "recipient": {"id": IGSID},
        "sender_action": "react",
        "payload": {"message_id": MID, "reaction": "love"},
    }
    result = await client.send_message(IG_ID, react, TOKEN)
    assert result.ok
    assert (result.recipient_id, result.message_id) == (IGSID, None)


async def test_graph_error_is_parsed_and_classified(graph: FakeGraph, client: GraphClient) -> None:
    graph.answer(
        403,
        {
            "error": {
                "message": "This message is sent outside of allowed window.",
                "type": "IGApiException",
                "code": 10,
                "error_subcode": 2534022,
                "fbtrace_id": "A9C5BFZGYCvRghcFEHTjgpC",
            }
        },
    )
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert not result.ok
    assert result.http_status == 403
    assert result.error is not None
    assert (result.error.code, result.error.subcode) == (10, 2534022)
    assert result.error.type == "IGApiException"
    assert result.error.fbtrace_id == "A9C5BFZGYCvRghcFEHTjgpC"
    assert result.classification == Classification(ErrorClass.PERMANENT, "outside_window")
    assert result.recipient_id is None and result.transport is None


async def test_throttle_carries_usage_and_retry_after(
    graph: FakeGraph, client: GraphClient
) -> None:
    buc = {IG_ID: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 3}]}
    graph.answer(
        400,
        {"error": {"message": "Calls exceeded", "code": 613, "error_subcode": 2534040}},
        {
            "X-Business-Use-Case-Usage": json.dumps(buc),
            "X-App-Usage": '{"call_count":28,"total_time":25,"total_cputime":25}',
            "Retry-After": "30",
        },
    )
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.classification == Classification(ErrorClass.THROTTLED, "rate_limited")
    assert result.usage[IG_ID].estimated_time_to_regain_access_min == 3.0
    assert result.app_usage is not None and result.app_usage.call_count == 28.0
    assert result.retry_after_s == 30.0


async def test_token_error_is_account_level(graph: FakeGraph, client: GraphClient) -> None:
    graph.answer(400, {"error": {"message": "Invalid OAuth 2.0 Access Token", "code": 190}})
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.classification == Classification(ErrorClass.ACCOUNT, "token_invalid")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            500,
            "Internal Server Error",
            Classification(ErrorClass.TRANSIENT, "http_5xx", None, True),
        ),
        (
            502,
            "<html>bad gateway</html>",
            Classification(ErrorClass.TRANSIENT, "http_5xx", None, True),
        ),
        (503, "unavailable", Classification(ErrorClass.TRANSIENT, "http_5xx")),
        (
            500,
            {"error": {"message": "An unknown error occurred", "code": 1, "is_transient": True}},
            # (as a 5xx it may come after the send was processed: maybe delivered)
            Classification(ErrorClass.TRANSIENT, "api_unknown", TRANSIENT_CAP, True),
        ),
        (
            500,
            {"error": {"message": "invalid JSON reply", "code": 1, "error_subcode": 1357046}},
            Classification(ErrorClass.TRANSIENT, "invalid_json_reply", None, True),
        ),
        (404, "<html>nope</html>", Classification(ErrorClass.PERMANENT, "unclassified_4xx")),
        (429, "slow down", Classification(ErrorClass.THROTTLED, "http_429")),
    ],
)
async def test_server_errors(
    graph: FakeGraph, client: GraphClient, status: int, body: Any, expected: Classification
) -> None:
    graph.answer(status, body)
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert not result.ok
    assert result.http_status == status
    assert result.classification == expected
    assert result.ambiguous is expected.ambiguous


@pytest.mark.parametrize(
    "body",
    ["not json", {}, {"message_id": MID}, {"recipient_id": ""}, [IGSID], {"recipient_id": None}],
)
async def test_2xx_without_recipient_id_is_ambiguous(
    graph: FakeGraph, client: GraphClient, body: Any
) -> None:
    graph.answer(200, body)
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert not result.ok
    assert result.http_status == 200
    assert result.ambiguous
    assert result.classification == Classification(
        ErrorClass.TRANSIENT, "malformed_success", None, True
    )


async def test_2xx_with_graph_error_object_is_classified(
    graph: FakeGraph, client: GraphClient
) -> None:
    graph.answer(
        200, {"error": {"message": "No matching user", "code": 100, "error_subcode": 2534014}}
    )
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.classification == Classification(ErrorClass.PERMANENT, "no_matching_user")


async def test_redirect_is_not_followed(graph: FakeGraph, client: GraphClient) -> None:
    async def redirect(_: Recorded) -> Response:
        return Response(status_code=307, headers={"Location": "/v23.0/elsewhere/messages"})

    graph.handler = redirect
    result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert len(graph.requests) == 1  # a followed 307 would POST the message again
    assert result.classification == Classification(ErrorClass.TRANSIENT, "unexpected_status")


# --- no answer ----------------------------------------------------------------------------


async def test_read_timeout_is_ambiguous(graph: FakeGraph) -> None:
    graph.handler = graph.hang
    async with GraphClient(settings_for(graph, read_timeout_s=0.2)) as client:
        result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert len(graph.requests) == 1  # Graph did receive it: that is the ambiguity
    assert not result.ok
    assert result.http_status is None
    assert result.transport is not None
    assert result.transport.reason == "read_timeout"
    assert result.transport.exc_type == "ReadTimeout"
    assert result.ambiguous
    assert result.classification == Classification(ErrorClass.TRANSIENT, "read_timeout", None, True)
    assert 0.2 <= result.elapsed_s < 2


async def test_connection_refused_is_not_ambiguous() -> None:
    settings = GraphSettings(base_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1)
    async with GraphClient(settings) as client:
        result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.transport is not None
    assert result.transport.reason == "connect_error"
    assert not result.ambiguous
    assert result.classification == Classification(ErrorClass.TRANSIENT, "connect_error")


async def test_pool_exhaustion_is_not_ambiguous(graph: FakeGraph) -> None:
    graph.handler = graph.hang
    settings = settings_for(
        graph, max_connections=1, max_keepalive_connections=1, pool_timeout_s=0.1
    )
    async with GraphClient(settings) as client:
        first = asyncio.create_task(client.send_message(IG_ID, TEXT_BODY, TOKEN))
        await asyncio.wait_for(graph.received.wait(), timeout=5)
        second = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
        graph.release.set()
        assert (await first).ok
    assert second.transport is not None
    assert second.transport.reason == "pool_timeout"
    assert not second.ambiguous
    assert len(graph.requests) == 1  # the second one never left


@pytest.mark.parametrize(
    ("exc_type", "reason", "ambiguous"),
    [
        (httpx.WriteError, "write_error", True),
        (httpx.RemoteProtocolError, "remote_protocol_error", True),
        (httpx.ConnectTimeout, "connect_timeout", False),
        (httpx.LocalProtocolError, "local_protocol_error", False),
    ],
)
async def test_transport_exceptions_become_results(
    exc_type: type[httpx.TransportError], reason: str, ambiguous: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        # The text quotes the header, as h11 does for an illegal value.
        raise exc_type(f"failed: {request.headers['authorization']}", request=request)

    settings = GraphSettings(base_url="https://graph.instagram.com")
    async with GraphClient(settings, transport=httpx.MockTransport(fail)) as client:
        result = await client.send_message(IG_ID, TEXT_BODY, TOKEN)
    assert result.transport is not None
    assert (result.transport.reason, result.ambiguous) == (reason, ambiguous)
    assert result.transport.detail == "failed: Bearer [redacted]"


@pytest.mark.parametrize("bad_token", ["", "IGAA tok", "IGAAtok\n", 'IGAA"tok', "IGAA\\tok", "tök"])
async def test_malformed_token_is_refused_before_sending(
    graph: FakeGraph, client: GraphClient, bad_token: str
) -> None:
    result = await client.send_message(IG_ID, TEXT_BODY, bad_token)
    assert graph.requests == []
    assert result.classification == Classification(ErrorClass.ACCOUNT, "token_malformed")
    assert not result.ok and result.http_status is None


async def test_closed_client_raises_our_error_without_token(graph: FakeGraph) -> None:
    client = GraphClient(settings_for(graph))
    await client.aclose()
    with pytest.raises(GraphClientError, match="closed") as info:
        await client.send_message(IG_ID, TEXT_BODY, SecretStr(TOKEN))
    assert graph.requests == []
    assert TOKEN not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # the original is not chained, not even implicitly
    # Tracebacks rendered with locals (rich, better-exceptions) must not show it either.
    tb = info.value.__traceback__
    while tb is not None:
        assert TOKEN not in repr(tb.tb_frame.f_locals), tb.tb_frame.f_code.co_name
        tb = tb.tb_next


# --- the token never leaks ----------------------------------------------------------------


async def test_token_never_appears_in_results_or_logs(graph: FakeGraph) -> None:
    async def echo_token(request: Recorded) -> Response:
        # A hostile or buggy server quoting our header back at us.
        auth = request.headers["authorization"]
        return JSONResponse(
            {"error": {"message": f"bad token {auth}", "code": 190}}, status_code=400
        )

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"reset while sending {request.headers}", request=request)

    results: list[GraphResult] = []
    with capture_logs() as logs:
        async with GraphClient(settings_for(graph, read_timeout_s=0.2)) as client:
            for handler in (answer_ok, echo_token, graph.hang):
                graph.handler = handler
                results.append(await client.send_message(IG_ID, TEXT_BODY, TOKEN))
            graph.answer(500, f"oops {TOKEN}")
            results.append(await client.send_message(IG_ID, TEXT_BODY, SecretStr(TOKEN)))
            results.append(await client.send_message(IG_ID, TEXT_BODY, TOKEN + "\n"))
        refused = GraphSettings(base_url=f"http://127.0.0.1:{free_port()}")
        async with GraphClient(refused) as client:
            results.append(await client.send_message(IG_ID, TEXT_BODY, TOKEN))
        mocked = GraphSettings(base_url="https://graph.instagram.com")
        async with GraphClient(mocked, transport=httpx.MockTransport(fail)) as client:
            results.append(await client.send_message(IG_ID, TEXT_BODY, TOKEN))

    reasons = [result.classification.reason for result in results]
    assert reasons == [
        "sent",
        "token_invalid",
        "read_timeout",
        "http_5xx",
        "token_malformed",
        "connect_error",
        "read_error",
    ]
    assert results[1].error is not None
    assert results[1].error.message == "bad token Bearer [redacted]"
    assert len(logs) == len(results)  # every attempt is logged ...
    for result in results:
        assert TOKEN not in repr(result)
        assert TOKEN not in str(result)
    for entry in logs:
        assert TOKEN not in repr(entry)  # ... and none of them mentions the token
