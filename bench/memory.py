"""Redis memory per queued intent, and what a backlog of a million costs.

    .venv/bin/python -m bench.memory [--n 20000] [--per-conversation 1] [--json-out FILE]

Starts a private redis-server, registers one account, enqueues N text intents (a realistic
80-character text, metadata of two fields) with the real client and no worker, and reads
`used_memory` before and after: everything an intent keeps while it waits (its idempotency
record, its ARQ job, its queue entry, its conversation entry and the registry). With
`--per-conversation K` intents share conversations K at a time (the later ones wait parked).
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from ig_outbound.harness.intents import make_intent
from ig_outbound.harness.processes import RedisServer
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.settings import ClientSettings

ACCOUNT = "17841400000000901"
TEXT = "Thanks for your message! Your order #{n:06d} ships today; tracking link follows."


def _used(r: redis.Redis) -> int:
    info: Any = r.info("memory")
    return int(info["used_memory"])


def measure(n: int, per_conversation: int) -> dict[str, Any]:
    with RedisServer(persistent=False) as server:
        settings = ClientSettings(
            redis_url=server.url, key_prefix="mem", redis_allow_data_loss=True
        )
        r = redis.Redis.from_url(server.url)
        with SyncOutboundClient.connect(settings=settings) as client:
            client.register_accounts([ACCOUNT])
            client.enqueue_many([make_intent("warm", ACCOUNT, "1", {"kind": "sticker"})])
            before = _used(r)
            for start in range(0, n, 1000):
                batch = [
                    make_intent(
                        f"mem-{i:08d}", ACCOUNT, f"9{i // per_conversation:011d}",
                        {"kind": "text", "text": TEXT.format(n=i)},
                        metadata={"order": f"B-{i}", "shop": "eu-1"},
                    )
                    for i in range(start, min(start + 1000, n))
                ]  # fmt: skip
                results = client.enqueue_many(batch)
                assert all(x.status == "queued" for x in results), results[0]
            after = _used(r)
        r.close()
    per_intent = (after - before) / n
    return {
        "bench": "memory",
        "n": n,
        "per_conversation": per_conversation,
        "bytes_per_intent": round(per_intent),
        "million_backlog_mb": round(per_intent * 1_000_000 / 2**20),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--per-conversation", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(args.n, args.per_conversation)
    print(
        f"{result['bytes_per_intent']} bytes of Redis memory per queued intent "
        f"({args.n} intents, {args.per_conversation} per conversation); a backlog of a "
        f"million: about {result['million_backlog_mb']} MB"
    )
    line = json.dumps(result, separators=(",", ":"))
    if args.json_out is not None:
        with args.json_out.open("a") as out:
            out.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
