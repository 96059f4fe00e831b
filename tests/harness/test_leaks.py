"""The secrets scan finds a token wherever it was planted, and only then."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ig_outbound.harness.leaks import find_leaks, scan_stack
from ig_outbound.harness.processes import RedisServer

TOKEN = "IGAA-planted-secret-0123456789"
SECRETS = {"token of 17841400000000001": TOKEN}
CLEAN_LOG = b'{"event": "sent", "account": "17841400000000001"}\n' * 20

PLANTS: dict[str, Callable[[Any], object]] = {
    "string": lambda r: r.set("igo:s", f"x{TOKEN}x"),
    "key name": lambda r: r.set(f"igo:{TOKEN}", "1"),
    "hash value": lambda r: r.hset("igo:h", "field", TOKEN),
    "hash field": lambda r: r.hset("igo:h", TOKEN, "v"),
    "zset member": lambda r: r.zadd("igo:z", {TOKEN: 1}),
    "set member": lambda r: r.sadd("igo:set", TOKEN),
    "list item": lambda r: r.rpush("igo:l", TOKEN),
    "stream value": lambda r: r.xadd("igo:x", {"outcome": f'{{"t":"{TOKEN}"}}'}),
}


@pytest.fixture
def db(redis_server: RedisServer) -> Iterator[Any]:
    r = redis.Redis.from_url(redis_server.url)
    r.flushdb()
    # Innocent data of every kind, so a clean scan has something to look at.
    r.set("igo:clean", "value")
    r.hset("igo:rec", mapping={"state": "sent", "account": "17841400000000001"})
    r.xadd("igo:outcomes", {"key": "k1", "outcome": "{}"})
    yield r
    r.flushdb()
    r.close()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "worker.log"
    path.write_bytes(CLEAN_LOG)
    return path


def test_a_clean_stack_has_no_leaks(db: Any, redis_server: RedisServer, log: Path) -> None:
    assert scan_stack(redis_server.url, [log], SECRETS, min_bytes=50) == []


@pytest.mark.parametrize("where", sorted(PLANTS))
def test_a_token_anywhere_in_redis_is_found(
    where: str, db: Any, redis_server: RedisServer, log: Path
) -> None:
    PLANTS[where](db)
    assert scan_stack(redis_server.url, [log], SECRETS) == [
        "token of 17841400000000001 found in redis"
    ]


def test_a_token_in_a_log_is_found_naming_the_log(
    db: Any, redis_server: RedisServer, log: Path, tmp_path: Path
) -> None:
    other = tmp_path / "reconcile.log"
    other.write_bytes(CLEAN_LOG + f"Authorization: Bearer {TOKEN}\n".encode())
    assert scan_stack(redis_server.url, [log, other], SECRETS) == [
        "token of 17841400000000001 found in log reconcile.log"
    ]


def test_a_scan_of_next_to_nothing_is_refused(
    db: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="too little to scan"):
        scan_stack(redis_server.url, [empty], SECRETS)
    with pytest.raises(ValueError, match="too little to scan"):
        scan_stack(redis_server.url, [], SECRETS)


def test_findings_name_the_secret_never_show_it() -> None:
    found = find_leaks(SECRETS, {"redis": TOKEN.encode(), "log a": b"", "log b": TOKEN.encode()})
    assert found == [
        "token of 17841400000000001 found in redis",
        "token of 17841400000000001 found in log b",
    ]
    assert not any(TOKEN in line for line in found)
