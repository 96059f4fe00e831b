"""The supervisor's decisions, in process: which Redis failures end `ig-outbound worker`
(configuration: credentials, permissions, certificates; a Redis never reached) and which
are outages it outlives. ARQ's worker is replaced by a script of what each start raises;
the processes themselves are in tests/test_cli_redis.py."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    ResponseError,
    WatchError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ig_outbound.worker import arq_worker, supervisor
from ig_outbound.worker.supervisor import RedisUnusableError, redis_problem, run_supervised


def _raised_inside(outer: Exception, inner: BaseException) -> Exception:
    """`outer` as redis-py raises it: inside `except <inner>`, so `inner` is its context."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 (the implicit context is the point)
    except Exception as exc:
        return exc


FATAL: dict[str, BaseException] = {
    "wrong password": AuthenticationError("invalid username-password pair"),
    "ACL user refused": AuthorizationError("user refused"),
    "command not permitted": NoPermissionError("NOPERM this user has no permissions"),
    "NOAUTH reply": ResponseError("NOAUTH Authentication required."),
    "WRONGPASS in a pipeline": ResponseError("Command # 1 (PING) caused error: WRONGPASS x"),
    "certificate refused": _raised_inside(
        RedisConnectionError("Error 1 connecting to host:6380."),
        ssl.SSLCertVerificationError(1, "certificate verify failed"),
    ),
    "certificate text only": RedisConnectionError(
        "Error 1 connecting. [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    ),
}
TRANSIENT: dict[str, BaseException] = {
    "refused": RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."),
    "timeout": RedisTimeoutError("Timeout reading from socket"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "watch in ARQ's pick-up": WatchError("Watched variable changed."),
    "loading": ResponseError("LOADING Redis is loading the dataset in memory"),
}


@pytest.mark.parametrize("exc", FATAL.values(), ids=FATAL.keys())
def test_credentials_permissions_and_certificates_are_fatal(exc: BaseException) -> None:
    problem = redis_problem(exc)
    assert problem.fatal
    assert problem.code in ("redis_auth_failed", "redis_tls_failed")


@pytest.mark.parametrize("exc", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_connection_loss_and_redis_hiccups_are_not_fatal(exc: BaseException) -> None:
    assert not redis_problem(exc).fatal


@dataclass
class Script:
    """What each probe and each worker run raises, in order (None: it succeeds)."""

    probes: list[BaseException | None]
    runs: list[BaseException | None] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def probe(self) -> None:
        self.calls.append("probe")
        self._next(self.probes)

    def run(self) -> None:
        self.calls.append("run")
        self._next(self.runs)

    @staticmethod
    def _next(outcomes: list[BaseException | None]) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    """Workers that do what the script says, and no waiting between restarts."""
    scripted = Script(probes=[])

    class FakeWorker:
        def run(self) -> None:
            scripted.run()

    def create(settings_cls: type[Any], **kwargs: Any) -> FakeWorker:
        return FakeWorker()

    monkeypatch.setattr(arq_worker, "create_guarded_worker", create)
    monkeypatch.setattr(supervisor, "BACKOFF_START_S", 0.0)
    monkeypatch.setattr(supervisor, "BACKOFF_CAP_S", 0.0)
    yield scripted


def test_a_wrong_password_ends_the_start_at_the_first_try(script: Script) -> None:
    script.probes = [AuthenticationError("WRONGPASS invalid username-password pair")]
    with pytest.raises(RedisUnusableError) as info:
        run_supervised(object, probe=script.probe)
    assert info.value.problem.code == "redis_auth_failed"
    assert script.calls == ["probe"]


def test_a_redis_never_reached_ends_the_start_after_a_few_tries(script: Script) -> None:
    refused: BaseException = RedisConnectionError("Error 111 connecting to 127.0.0.1:1.")
    script.probes = [refused] * supervisor.STARTUP_TRIES
    with pytest.raises(RedisUnusableError) as info:
        run_supervised(object, probe=script.probe)
    assert info.value.problem.code == "redis_unreachable"
    assert script.calls == ["probe"] * supervisor.STARTUP_TRIES


def test_an_outage_after_the_start_is_outlived_until_credentials_are_refused(
    script: Script,
) -> None:
    """Once Redis answered, lost connections restart the worker however long they last;
    a password changed meanwhile ends it."""
    lost: BaseException = RedisConnectionError("Connection closed by server.")
    outage = supervisor.STARTUP_TRIES + 2
    script.probes = [None] + [lost] * outage + [None, AuthenticationError("WRONGPASS")]
    script.runs = [lost, lost]
    with pytest.raises(RedisUnusableError) as info:
        run_supervised(object, probe=script.probe)
    assert info.value.problem.code == "redis_auth_failed"
    assert script.calls == ["probe", "run", *["probe"] * outage, "probe", "run", "probe"]


def test_a_worker_that_stops_on_its_own_ends_the_supervisor(script: Script) -> None:
    script.probes = [None]
    script.runs = [None]  # ARQ returned: a signal drained it
    run_supervised(object, probe=script.probe)
    assert script.calls == ["probe", "run"]


def test_a_process_waiting_out_an_outage_still_says_it_is_alive(script: Script) -> None:
    """Between restarts no ARQ worker (and so no heartbeat task) runs: the supervisor calls
    `alive` (the heartbeat file) so a liveness probe does not restart a process that is only
    waiting for Redis."""
    lost: BaseException = RedisConnectionError("Connection closed by server.")
    script.probes = [None, lost, lost, None, AuthenticationError("WRONGPASS")]
    script.runs = [lost, lost]
    beats: list[str] = []
    with pytest.raises(RedisUnusableError):
        run_supervised(object, probe=script.probe, alive=lambda: beats.append("alive"))
    # Once after each failure, before waiting: four failures, four beats at least.
    assert len(beats) >= 4
