"""Runs last in the e2e package: after everything above, no token is anywhere it must not be."""

from __future__ import annotations

from typing import Any

import redis

from tests.e2e.conftest import Stack


def _every_value(r: Any) -> list[bytes]:
    values: list[bytes] = []
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        values.append(key)
        if kind == b"string":
            values.append(r.get(key) or b"")
        elif kind == b"hash":
            for k, v in r.hgetall(key).items():
                values += [k, v]
        elif kind == b"zset":
            values += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"set":
            values += list(r.smembers(key))
        elif kind == b"stream":
            for _, fields in r.xrange(key):
                for k, v in fields.items():
                    values += [k, v]
    return values


def test_tokens_never_reach_redis_or_the_worker_log(stack: Stack) -> None:
    r = redis.Redis.from_url(stack.redis_url)
    try:
        blob = b"\n".join(_every_value(r))
    finally:
        r.close()
    log = stack.worker_log.read_bytes()
    assert len(blob) > 1000 and len(log) > 1000  # the suite did write both
    for token in stack.tokens.values():
        assert token.encode() not in blob
        assert token.encode() not in log
