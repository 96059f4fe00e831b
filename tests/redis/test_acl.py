"""ACL users on a real redis-server whose default user is off: producers and a worker log in
as a named user whose password needs percent-encoding in the URL, with only the commands
ig-outbound needs; a wrong password or a missing one is refused by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.enqueue import OutboundClient, SyncOutboundClient
from ig_outbound.producers.redis_safety import inspect_sync
from ig_outbound.producers.settings import ClientSettings
from tests.redis.conftest import (
    ACCOUNT,
    Graph,
    fleet_on,
    log_tail,
    running_worker,
    send_through,
    sticker,
)

pytestmark = pytest.mark.slow

USER = "igo-app"
PASSWORD = "p@ss:w/rd%"
# Every key; the data types, Lua and MULTI/EXEC (ARQ); the connection handshake; nothing
# @dangerous (FLUSHALL, KEYS, DEBUG, CONFIG SET...) but three read-only exceptions:
# INFO (ARQ reads it when a worker starts: without it the worker never starts),
# CONFIG GET (the Redis safety check, producers/redis_safety.py; without it the check is
# skipped with a warning) and TIME (@fast only: the Lua scripts read Redis time).
APP_PERMISSIONS = (
    "~*", "-@all", "+@read", "+@write", "+@scripting", "+@transaction", "+@connection",
    "-@dangerous", "+info", "+config|get", "+time",
)  # fmt: skip
# The blunt alternative: everything but @dangerous, INFO given back, CONFIG GET not.
NO_CONFIG_PERMISSIONS = ("~*", "+@all", "-@dangerous", "+info")
NO_CONFIG_USER = "igo-noconfig"


def acl_user(name: str, password: str, permissions: tuple[str, ...]) -> list[str]:
    """redis-server arguments that define an enabled ACL user."""
    return ["--user", name, "on", f">{password}", *permissions]


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    users = [
        *acl_user(USER, PASSWORD, APP_PERMISSIONS),
        *acl_user(NO_CONFIG_USER, PASSWORD, NO_CONFIG_PERMISSIONS),
        *["--user", "default", "off"],  # no anonymous access at all
    ]
    with RedisServer(extra_args=users) as server:
        yield server


def url_for(server: RedisServer, user: str = USER, password: str = PASSWORD) -> str:
    return f"redis://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{server.port}/0"


def test_the_password_is_percent_encoded_in_the_url(acl_server: RedisServer) -> None:
    assert "igo-app:p%40ss%3Aw%2Frd%25@" in url_for(acl_server)


async def test_an_async_producer_logs_in_as_the_acl_user(acl_server: RedisServer) -> None:
    settings = ClientSettings(redis_url=url_for(acl_server), key_prefix="igo-acl")
    intent = sticker("acl-async")
    async with OutboundClient.connect(settings=settings) as client:
        await client.register_accounts([ACCOUNT])
        assert (await client.enqueue(intent)).status == "queued"
        assert await client.state(intent["idempotency_key"]) == "queued"


def test_the_safety_check_reads_the_configuration_as_the_acl_user(
    acl_server: RedisServer,
) -> None:
    r = connect_sync(ClientSettings(redis_url=url_for(acl_server)))
    try:
        safety = inspect_sync(r)
    finally:
        r.close()
    assert not safety.config_forbidden
    assert safety.eviction_policy == "noeviction"


def test_without_config_get_the_safety_check_says_it_could_not_look(
    acl_server: RedisServer,
) -> None:
    r = connect_sync(ClientSettings(redis_url=url_for(acl_server, NO_CONFIG_USER)))
    try:
        assert inspect_sync(r).config_forbidden
    finally:
        r.close()


def test_a_worker_and_a_producer_send_end_to_end_as_the_acl_user(
    acl_server: RedisServer, graph: Graph, tmp_path: Path
) -> None:
    settings = fleet_on(graph, url_for(acl_server))
    log = tmp_path / "worker.log"
    with running_worker(settings, log):
        assert send_through(settings, log) == "sent"
    assert PASSWORD not in log.read_text()


@pytest.mark.parametrize(
    ("user", "password", "refusal"),
    [
        (USER, "not-the-password", "invalid username-password pair"),
        ("", "", "Authentication required"),
    ],
    ids=["wrong-password", "anonymous"],
)
def test_a_producer_without_the_right_password_is_refused_by_name(
    acl_server: RedisServer, user: str, password: str, refusal: str
) -> None:
    url = url_for(acl_server, user, password) if user else acl_server.url
    settings = ClientSettings(redis_url=url, key_prefix="igo-acl")
    with (
        SyncOutboundClient.connect(settings=settings) as client,
        pytest.raises(redis.AuthenticationError, match=refusal),
    ):
        client.enqueue(sticker("acl-refused"))


def test_a_worker_with_a_wrong_password_says_so_in_its_log(
    acl_server: RedisServer, graph: Graph, tmp_path: Path
) -> None:
    wrong = "wrong-" + PASSWORD
    settings = fleet_on(graph, url_for(acl_server, USER, wrong))
    log = tmp_path / "worker.log"
    worker = WorkerProcess.from_settings(settings, log_path=log).start()
    try:
        # Named by its type: the supervisor may stop at once or ARQ may retry (and say so).
        wait_until(
            lambda: "AuthenticationError" in log_tail(log),
            30,
            "the worker to log the refused login",
        )
    finally:
        worker.stop()
    assert wrong not in log.read_text()
