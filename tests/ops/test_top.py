"""`ig-outbound top`: the numbers it reads (`ops/fleet_view.py`) are exactly what Redis holds,
its view draws them, and the command works the way an operator meets it: in a terminal
(tmux: a real pseudo-terminal, so the in-place redraw can be checked on the screen), with
`--once` and `--json`, through a Redis outage, against a live stack, and Ctrl-C exits 0.

The fast tests seed a private Redis with what the workers would write (outcome stream
entries in the real field layout, the ARQ queue, a dead letter, pauses, a heartbeat); the
slow ones run the command as a process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from rich.console import Console

from ig_outbound.cli.top_render import TITLE, format_age, render
from ig_outbound.emulator import AccountConfig, EmulatorConfig, run_emulator_process
from ig_outbound.harness.env import client_view, fleet_settings, inherited_env, process_env
from ig_outbound.harness.intents import text_intent
from ig_outbound.harness.processes import RedisServer, WorkerProcess
from ig_outbound.harness.wait import wait_registered, wait_until
from ig_outbound.ops.fleet_view import sample
from ig_outbound.producers.enqueue import SyncOutboundClient
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.outcome import Outcome, OutcomeStatus
from ig_outbound.producers.redis_util import resolve
from ig_outbound.worker.fleet import Fleet
from ig_outbound.worker.settings import Settings

PREFIX = "igo-top"
KEYS = Keys(PREFIX)
ACCOUNT_A = "17841400000000101"  # light only
ACCOUNT_B = "17841400000000102"  # media and light
ACCOUNT_C = "17841400000000103"  # one private reply
ACCOUNT_D = "17841400000000104"  # paused, sends nothing
WINDOW_S = 10.0
# Nobody listens on port 1: a refused connection, at once.
NOWHERE = "redis://:nowhere-secret@127.0.0.1:1/0"
# A stream entry's fields (redis-py's own type is a union of key and value types).
Fields = dict[Any, Any]


# --- seeding what the workers would have written ---------------------------------------------


def _outcome(
    status: OutcomeStatus,
    account: str,
    kind: str,
    latency_ms: float,
    *,
    reason: str | None = None,
    recipient: str = "id:1254477700001",
) -> Fields:
    """A stream entry's fields exactly as `journal_finish.lua` writes them."""
    outcome = Outcome(
        key=f"k-{uuid.uuid4().hex}",
        status=status,
        reason=reason,
        account_id=account,
        recipient=recipient,
        kind=kind,
        finished_at=datetime.now(UTC),
        latency_ms=latency_ms,
    )
    return {"key": outcome.key, "status": status.value, "outcome": outcome.model_dump_json()}


def _window_outcomes() -> list[Fields]:
    """100 outcomes of the window, latencies 1..100 ms (p50 50, p99 99)."""
    sent, failed = OutcomeStatus.SENT, OutcomeStatus.FAILED
    plan: list[tuple[OutcomeStatus, str, str, str | None, str]] = [
        *[(sent, ACCOUNT_A, "text", None, "id:1")] * 50,
        *[(sent, ACCOUNT_B, "video", None, "id:2")] * 30,
        *[(sent, ACCOUNT_B, "text", None, "id:2")] * 10,
        (sent, ACCOUNT_C, "text", None, "comment:18000000000000001"),
        *[(failed, ACCOUNT_A, "text", "token_invalid", "id:1")] * 3,
        *[(OutcomeStatus.REJECTED, ACCOUNT_A, "text", "window_closed", "id:1")] * 2,
        (OutcomeStatus.EXPIRED, ACCOUNT_A, "text", "deadline_passed", "id:1"),
        (OutcomeStatus.UNKNOWN, ACCOUNT_A, "text", None, "id:1"),
        (failed, ACCOUNT_B, "video", "media_too_large", "id:2"),
        (failed, ACCOUNT_A, "text", "account_removed", "id:1"),
    ]
    return [
        _outcome(status, account, kind, float(i + 1), reason=reason, recipient=recipient)
        for i, (status, account, kind, reason, recipient) in enumerate(plan)
    ]


GARBAGE: list[Fields] = [
    {"key": "bad-1", "status": "sent", "outcome": "{not json"},
    {"key": "bad-2", "status": "sent"},  # no outcome at all
    {"key": "bad-3", "status": "sent", "outcome": json.dumps({"status": "delivered"})},
]


@dataclass(frozen=True)
class Seeded:
    now_ms: int  # Redis's clock when seeding began


async def _seed(r: aioredis.Redis) -> Seeded:
    """The fleet a view must read back: a 100-outcome window (and 3 garbage entries), an
    outcome older than the window, 3 ready and 2 scheduled intents (the oldest ready 65 s
    ago), a dead letter, 3 paused accounts (2 causes), a slowed one, counters, one live
    worker and one dead."""
    seconds, micros = await r.time()
    now = int(seconds) * 1000 + int(micros) // 1000
    await r.xadd(
        KEYS.outcomes, _outcome(OutcomeStatus.SENT, ACCOUNT_A, "text", 1.0), id=now - 20_000
    )
    entries = _window_outcomes()
    entries[10:10] = GARBAGE[:2]
    entries.append(GARBAGE[2])
    for i, fields in enumerate(entries):
        # Within the last ~2 s, oldest first (a stream's ids only grow).
        await r.xadd(KEYS.outcomes, fields, id=f"{now - 2_000 + i * 10}-0")
    await r.zadd(
        KEYS.queue,
        {"j-r1": now - 65_000, "j-r2": now - 1_000, "j-r3": now - 10, "j-s1": now + 60_000,
         "j-s2": now + 120_000},
    )  # fmt: skip
    await r.xadd(KEYS.dead_letters, {"key": "dead-1", "status": "failed", "outcome": "{}"})
    await resolve(r.sadd(KEYS.accounts, ACCOUNT_A, ACCOUNT_B, ACCOUNT_C, ACCOUNT_D))
    await r.set(KEYS.pause(ACCOUNT_A), "token_invalid")
    await r.set(KEYS.pause(ACCOUNT_B), "throttled")
    await r.set(KEYS.pause(ACCOUNT_D), "throttled")
    await r.set(KEYS.slow(ACCOUNT_C), "1")
    await resolve(r.hset(KEYS.counters, mapping={"enqueued": 120, "refused:window_closed": 4}))
    await Fleet(r, KEYS).heartbeat("worker-alive")
    await r.zadd(KEYS.workers, {"worker-dead": now - 60_000})  # long stale: not alive
    return Seeded(now)


def _settings(url: str) -> Settings:
    return Settings(redis_url=url, key_prefix=PREFIX)


@pytest.fixture
async def seeded(aredis: aioredis.Redis) -> Seeded:
    return await _seed(aredis)


# What the view must read from the seeded fleet (now_ms and the oldest ready age aside).
EXPECTED_BUSIEST = [
    # 1 private reply in 10 s against 750/h: 0.1 / 0.2083 = 48 %.
    {"account_id": ACCOUNT_C, "rate_class": "private_reply", "sent": 1, "per_s": 0.1,
     "limit_per_s": 0.208, "utilisation_pct": 48.0},
    {"account_id": ACCOUNT_B, "rate_class": "media", "sent": 30, "per_s": 3.0,
     "limit_per_s": 10.0, "utilisation_pct": 30.0},
    {"account_id": ACCOUNT_B, "rate_class": "light", "sent": 10, "per_s": 1.0,
     "limit_per_s": 100.0, "utilisation_pct": 1.0},
    {"account_id": ACCOUNT_A, "rate_class": "light", "sent": 50, "per_s": 5.0,
     "limit_per_s": 100.0, "utilisation_pct": 5.0},
]  # fmt: skip
EXPECTED = {
    "prefix": PREFIX,
    "ready": 3,
    "scheduled": 2,
    "dead_letters": 1,
    "workers": 1,
    "paused": {"throttled": 2, "token_invalid": 1},
    "slowed": 1,
    "enqueued": 120,
    "refused": {"window_closed": 4},
    "window_s": WINDOW_S,
    "measured_s": WINDOW_S,
    "read": 103,
    "skipped": 3,
    "truncated": False,
    "outcomes": {"sent": 91, "failed": 5, "rejected": 2, "expired": 1, "unknown": 1},
    "send_rate_per_s": 9.1,
    # Ties (1 each) by name; `unknown` carries no reason, so its status stands in (6th: cut).
    "failure_reasons": [
        {"reason": "token_invalid", "count": 3},
        {"reason": "window_closed", "count": 2},
        {"reason": "account_removed", "count": 1},
        {"reason": "deadline_passed", "count": 1},
        {"reason": "media_too_large", "count": 1},
    ],
    "latency_ms": {"p50": 50.0, "p99": 99.0},
    "busiest": EXPECTED_BUSIEST,
}


def _without_clock(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in {"now_ms", "oldest_ready_age_s", "redis"}}


# --- fast: the numbers and the drawing --------------------------------------------------------


async def test_the_view_reads_the_fleet_and_the_window_exactly(
    aredis: aioredis.Redis, redis_server: RedisServer, seeded: Seeded
) -> None:
    view = await sample(aredis, KEYS, _settings(redis_server.url), WINDOW_S, busiest=10)
    data = view.as_dict()
    assert _without_clock(data) == EXPECTED
    # On Redis's clock: the seeding took milliseconds, not a second.
    assert 65.0 <= data["oldest_ready_age_s"] < 66.0
    assert seeded.now_ms <= data["now_ms"] < seeded.now_ms + 1000
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down


async def test_busiest_keeps_whole_accounts_and_zero_shows_none(
    aredis: aioredis.Redis, redis_server: RedisServer, seeded: Seeded
) -> None:
    settings = _settings(redis_server.url)
    two = await sample(aredis, KEYS, settings, WINDOW_S, busiest=2)
    # The two accounts closest to a limit, each with every class it sent in.
    assert [row.as_dict() for row in two.busiest] == EXPECTED_BUSIEST[:3]
    assert (await sample(aredis, KEYS, settings, WINDOW_S, busiest=0)).busiest == []


async def test_a_capped_read_measures_rates_over_what_it_read(
    aredis: aioredis.Redis, redis_server: RedisServer, seeded: Seeded
) -> None:
    view = await sample(
        aredis, KEYS, _settings(redis_server.url), WINDOW_S, busiest=10, max_entries=20
    )
    assert view.read == 20 and view.truncated
    # The newest 20: garbage-3 and the plan's last 19 (its 9 failures, C's private reply, B's
    # last 9 texts), all within 2 s: the rate is over that span, not over the 10 s asked.
    assert view.skipped == 1
    assert view.outcomes == {"sent": 10, "failed": 5, "rejected": 2, "expired": 1, "unknown": 1}
    assert 0.2 < view.measured_s < 2.5
    assert view.send_rate_per_s == pytest.approx(10 / view.measured_s)
    rows = [(r.account_id, r.rate_class.value, r.sent) for r in view.busiest]
    assert rows == [(ACCOUNT_C, "private_reply", 1), (ACCOUNT_B, "light", 9)]
    assert view.as_dict()["truncated"] is True


async def test_an_empty_fleet_reads_as_zeros(
    aredis: aioredis.Redis, redis_server: RedisServer
) -> None:
    view = await sample(aredis, KEYS, _settings(redis_server.url), WINDOW_S, busiest=10)
    data = _without_clock(view.as_dict())
    assert data["outcomes"] == dict.fromkeys(
        ("sent", "failed", "rejected", "expired", "unknown"), 0
    )
    assert data["latency_ms"] == {"p50": None, "p99": None}
    assert (data["ready"], data["workers"], data["read"], data["busiest"]) == (0, 0, 0, [])
    assert view.snapshot.oldest_ready_age_s == 0.0


def test_ages_read_like_a_clock() -> None:
    assert [format_age(s) for s in (0, 42.9, 125, 3_725, 273_600)] == [
        "0s", "42s", "2m05s", "1h02m", "3d04h",
    ]  # fmt: skip


def _drawn(view: Any, **kwargs: Any) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(render(view, "redis://127.0.0.1:1/0", **kwargs))
    return console.export_text()


def _cells(*cells: str) -> re.Pattern[str]:
    """A table row with these cells in order (any box characters between them)."""
    return re.compile(r"[\s│┃|]+".join(re.escape(c) for c in cells))


async def test_the_drawing_shows_every_number(
    aredis: aioredis.Redis, redis_server: RedisServer, seeded: Seeded
) -> None:
    view = await sample(aredis, KEYS, _settings(redis_server.url), WINDOW_S, busiest=10)
    text = _drawn(view, interval_s=2.0)
    assert text.count(TITLE) == 1
    assert f"prefix {PREFIX}" in text and "redis://127.0.0.1:1/0" in text
    assert "workers alive 1" in text
    assert "ready 3   scheduled 2   oldest ready 1m05s" in text
    assert _cells("dead letters", "1").search(text)
    assert "paused        throttled 2, token_invalid 1" in text
    assert "enqueued      120   refused: window_closed 4" in text
    assert _cells("sent", "91", "9.10").search(text)
    assert _cells("failed", "5", "0.50").search(text)
    assert "send rate 9.10/s   latency p50 50 ms  p99 99 ms" in text
    assert "failure reasons: token_invalid 3, window_closed 2, account_removed 1" in text
    assert _cells(ACCOUNT_C, "private_reply", "1", "0.10", "750/h").search(text)
    assert _cells(ACCOUNT_B, "media", "30", "3.00", "10/s", "██████░").search(text)
    assert "30.0%" in text and "48.0%" in text
    assert "read 103 outcomes, 3 skipped" in text
    assert "Redis unavailable" not in text
    assert "Redis unavailable: cannot connect to Redis (ConnectionError)" in _drawn(
        view, error="cannot connect to Redis (ConnectionError)", interval_s=2.0
    )


# --- slow: the command as a process -----------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ig_outbound.cli", "top", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
async def test_json_and_once_print_the_seeded_fleet(
    redis_server: RedisServer, seeded: Seeded
) -> None:
    env = process_env(_settings(redis_server.url))
    done = await asyncio.to_thread(_cli, ["--json", "--window", "10"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["redis"] == f"redis://127.0.0.1:{redis_server.port}/0"
    assert _without_clock(data) == EXPECTED
    once = await asyncio.to_thread(_cli, ["--once", "--accounts", "1"], {**env, "COLUMNS": "160"})
    assert once.returncode == 0, once.stderr[-3000:]
    assert once.stdout.count(TITLE) == 1 and "workers alive 1" in once.stdout
    assert _cells(ACCOUNT_C, "private_reply", "1", "0.10", "750/h").search(once.stdout)
    assert ACCOUNT_B not in once.stdout  # --accounts 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        ([], {"IG_OUTBOUND_REDIS_URL": NOWHERE}, "redis_unreachable"),
        (["--json"], {"IG_OUTBOUND_REDIS_URL": NOWHERE}, "redis_unreachable"),
        (["--interval", "0"], {}, "invalid_argument"),
        (["--window", "nan"], {}, "invalid_argument"),
        ([], {"IG_OUTBOUND_RATE__LIGHT_PER_S": "-1"}, "invalid_settings"),
    ],
    ids=["unreachable", "unreachable json", "interval 0", "window nan", "bad settings"],
)
def test_a_start_that_cannot_work_is_one_json_line_and_exit_2(
    args: list[str], env: dict[str, str], error: str
) -> None:
    done = _cli(args, {**inherited_env(), **env})
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stderr == "", (done.stdout, done.stderr[-3000:])
    report = json.loads(lines[0])
    assert report["error"] == error
    if error == "redis_unreachable":
        assert report["redis"] == "redis://:***@127.0.0.1:1/0"
        assert "nowhere-secret" not in done.stdout


class TmuxTop:
    """`ig-outbound top` in a pane of a private tmux server (its own socket: no one else's
    sessions are touched). The pane stays after the command ends, so its exit status can be
    read."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str]) -> None:
        self.socket = f"igo-top-{uuid.uuid4().hex[:12]}"
        self.session = "top"
        config = tmp / "tmux.conf"
        config.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
        # The terminal's size is the pane's: a COLUMNS or LINES of ours would override it.
        self.env = {k: v for k, v in env.items() if k not in {"COLUMNS", "LINES", "TMUX"}}
        command = shlex.join([sys.executable, "-m", "ig_outbound.cli", "top", *args])
        self._tmux("-f", str(config), "new-session", "-d", "-s", self.session, "-x", "160",
                   "-y", "50", command)  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        """Everything the pane ever showed: its scrollback and what is on it now."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.session)

    def wait_for(self, what: str, check: Any, timeout_s: float = 30.0) -> str:
        def ok() -> bool:
            return bool(check(self.screen()))

        try:
            wait_until(ok, timeout_s, what, poll_s=0.2)
        except TimeoutError:
            raise AssertionError(f"{what}; the pane shows:\n{self.screen()}") from None
        return self.screen()

    def _unreaped_status(self) -> str:
        """The exit status of the pane's process when it has exited but tmux has not read it
        yet: tmux 3.3 can close a pane before its SIGCHLD handler collects the status (the
        race tmux#4841 describes), and in full suites that status never came. The kernel
        keeps it in the zombie's /proc/<pid>/stat (field 52, `exit_code`, as waitpid gives
        it); a process that has not exited yields nothing."""
        pid = self._tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return ""
        fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3, the state
        if fields[0] != "Z" or len(fields) < 50:
            return ""
        code = int(fields[49])
        return str(os.WEXITSTATUS(code)) if os.WIFEXITED(code) else ""

    def interrupt(self) -> int:
        """Ctrl-C; wait for the command to end: its exit status."""
        self._tmux("send-keys", "-t", self.session, "C-c")
        end = "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}"
        found: list[str] = []

        def ended() -> bool:
            # tmux marks the pane dead when the terminal closes, and learns the exit status
            # a moment later: wait for the status (or the signal that killed it).
            shown = self._tmux("display-message", "-p", "-t", self.session, end)
            dead, status, signal = shown.strip().split(":")
            if dead == "1" and not (status or signal):
                status = self._unreaped_status()
            found[:] = [dead, status, signal]
            return dead == "1" and bool(status or signal)

        try:
            # Twice in a full suite the pane had not ended 10 s after Ctrl-C (cause not
            # known yet): wait longer, and say what tmux reports if it still has not.
            wait_until(ended, 30.0, "top to end after Ctrl-C", poll_s=0.1)
        except TimeoutError:
            raise AssertionError(
                f"top did not end after Ctrl-C (pane dead, status, signal: {found}); the pane "
                f"shows:\n{self.screen()}"
            ) from None
        _, status, signal = found
        assert status, f"top was killed by signal {signal}; the pane shows:\n{self.screen()}"
        return int(status)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def tmux_top(tmp_path: Path) -> Iterator[list[TmuxTop]]:
    """Every `TmuxTop` a test starts is killed at its end, whatever happened."""
    started: list[TmuxTop] = []
    yield started
    for top in started:
        top.close()


def _redis_time(screen: str) -> str | None:
    found = re.findall(r"Redis time (\S+ \S+) UTC", screen)
    return found[-1] if found else None


@pytest.mark.slow
def test_a_redis_outage_shows_in_red_and_the_view_recovers(
    tmp_path: Path, tmux_top: list[TmuxTop]
) -> None:
    with RedisServer() as server:
        env = process_env(_settings(server.url))
        top = TmuxTop(tmp_path, ["--interval", "0.3"], env)
        tmux_top.append(top)
        top.wait_for("the first view", lambda s: "workers alive 0" in s)
        server.stop()
        down = top.wait_for(
            "the outage in the view",
            lambda s: "Redis unavailable: cannot connect to Redis (ConnectionError)" in s,
        )
        assert "workers alive 0" in down  # the last figures stay
        server.start()
        up = top.wait_for("the view without the outage", lambda s: "Redis unavailable" not in s)
        assert up.count(TITLE) == 1  # redrawn in place all along: no scrolled copies
        assert top.interrupt() == 0
    assert "Traceback" not in top.screen()


# --- slow: a real stack ----------------------------------------------------------------------

STACK_ACCOUNT = "17841400000000401"
STACK_USERS = [f"12544777779{n:05d}" for n in range(30)]
STACK_PREFIX = "igo-top-e2e"
INTENTS = 300
STACK_WINDOW_S = 120  # every send of the test stays in the window while it looks


@dataclass
class Stack:
    settings: Settings
    redis_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    token = "IGAA" + secrets.token_urlsafe(32)
    emulator = EmulatorConfig(
        accounts=[AccountConfig(ig_id=STACK_ACCOUNT, token=token, username="topshop")],
        users={STACK_ACCOUNT: STACK_USERS},
    )
    with RedisServer() as server, run_emulator_process(emulator) as graph_url:
        settings = fleet_settings(
            redis_url=server.url,
            key_prefix=STACK_PREFIX,
            graph_url=graph_url,
            tokens={STACK_ACCOUNT: token},
            ambiguous_policy="resend",  # no gateway here: no echoes to reconcile with
            worker={"heartbeat_interval_s": 1.0},
        )
        log = tmp_path_factory.mktemp("top-e2e") / "worker.log"
        worker = WorkerProcess.from_settings(settings, log_path=log).start()
        try:
            wait_registered(settings, 1)
            yield Stack(settings, server.url)
        finally:
            worker.stop()


def _busiest_row(sent: int) -> re.Pattern[str]:
    per_s = f"{sent / STACK_WINDOW_S:.2f}"
    return _cells(STACK_ACCOUNT, "light", str(sent), per_s, "100/s")


@pytest.mark.slow
def test_top_follows_a_live_stack_in_place_and_ctrl_c_exits_0(
    stack: Stack, tmp_path: Path, tmux_top: list[TmuxTop]
) -> None:
    env = process_env(stack.settings)
    args = ["--interval", "0.5", "--window", str(STACK_WINDOW_S)]
    top = TmuxTop(tmp_path, args, env)
    tmux_top.append(top)
    before = top.wait_for(
        "an idle fleet with its worker alive",
        lambda s: "workers alive 1" in s and _cells("sent", "0", "0.00").search(s),
    )
    assert STACK_ACCOUNT not in before  # no sends yet: no busiest row

    intents = [
        text_intent(f"top-{i}-{uuid.uuid4().hex[:8]}", STACK_ACCOUNT, STACK_USERS[i % 30], f"m{i}")
        for i in range(INTENTS)
    ]
    with SyncOutboundClient.connect(stack.redis_url, client_view(stack.settings)) as client:
        results = client.enqueue_many(intents)
        assert all(r.error is None for r in results)
        outcomes = client.wait_many([i["idempotency_key"] for i in intents], 60.0)
    assert {o.status for o in outcomes.values()} == {OutcomeStatus.SENT}

    after = top.wait_for(
        f"{INTENTS} sends in the view",
        lambda s: (
            _cells("sent", str(INTENTS), f"{INTENTS / STACK_WINDOW_S:.2f}").search(s)
            and _busiest_row(INTENTS).search(s)
        ),
    )
    # Redrawn in place: one header on the whole pane, scrollback included, after dozens of
    # redraws; and still redrawing (Redis's time moves on).
    assert after.count(TITLE) == 1
    assert "workers alive 1" in after
    assert f"enqueued      {INTENTS}   refused: none" in after
    assert "2.5%" in after  # 2.5 sends/s of 100/s
    first = _redis_time(after)
    later = top.wait_for("a later redraw", lambda s: _redis_time(s) not in {None, first})
    assert later.count(TITLE) == 1

    assert top.interrupt() == 0
    assert "Traceback" not in top.screen()

    done = _cli(["--json", "--window", str(STACK_WINDOW_S)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["workers"] >= 1
    assert data["outcomes"]["sent"] == INTENTS and data["send_rate_per_s"] == 2.5
    assert (data["ready"], data["scheduled"], data["dead_letters"], data["skipped"]) == (0, 0, 0, 0)
    assert data["enqueued"] == INTENTS
    assert data["busiest"] == [
        {"account_id": STACK_ACCOUNT, "rate_class": "light", "sent": INTENTS, "per_s": 2.5,
         "limit_per_s": 100.0, "utilisation_pct": 2.5},
    ]  # fmt: skip
    assert data["latency_ms"]["p50"] is not None
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p99"] < 60_000
