"""The secrets scan: is any token anywhere it must never be (Redis, a worker's log)?

Tokens live only in the worker's memory (docs/architecture.md, "Secrets"). A stack that ran
traffic ends with this scan over every key and value in its Redis and every log its workers
wrote; the findings name where a token was found, never the token itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import redis


def redis_blobs(r: Any) -> Iterator[bytes]:
    """Every key name, and every value, field and member under it, of a bytes client's db."""
    for key in r.scan_iter(count=1000):
        yield key
        yield from _values(r, key, r.type(key))


def _values(r: Any, key: bytes, kind: bytes) -> Iterator[bytes]:
    if kind == b"string":
        yield r.get(key) or b""
    elif kind == b"hash":
        for field, value in r.hgetall(key).items():
            yield from (field, value)
    elif kind == b"zset":
        yield from (member for member, _ in r.zrange(key, 0, -1, withscores=True))
    elif kind in (b"set", b"list"):
        yield from (r.smembers(key) if kind == b"set" else r.lrange(key, 0, -1))
    elif kind == b"stream":
        for _, fields in r.xrange(key):
            for field, value in fields.items():
                yield from (field, value)


def find_leaks(secrets: Mapping[str, str], places: Mapping[str, bytes]) -> list[str]:
    """`<name> found in <place>` for every secret (by its name) that occurs in a place."""
    return [
        f"{name} found in {place}"
        for place, blob in places.items()
        for name, secret in secrets.items()
        if secret and secret.encode() in blob
    ]


def scan_stack(
    redis_url: str, logs: Iterable[Path], secrets: Mapping[str, str], min_bytes: int = 1
) -> list[str]:
    """Scan a stack's Redis and logs; returns the leaks (empty when clean). Raises
    `ValueError` unless Redis and the biggest log hold `min_bytes` at least: a scan of
    (next to) nothing proves nothing."""
    r = redis.Redis.from_url(redis_url)
    try:
        places = {"redis": b"\n".join(redis_blobs(r))}
    finally:
        r.close()
    texts = {f"log {p.name}": p.read_bytes() for p in logs if p.exists()}
    sizes = {"redis": len(places["redis"]), "logs": max(map(len, texts.values()), default=0)}
    if min(sizes.values()) < min_bytes:
        raise ValueError(f"too little to scan (bytes: {sizes}, at least {min_bytes} each)")
    return find_leaks(secrets, {**places, **texts})
