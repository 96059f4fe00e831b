"""A local stack of real processes: a private redis-server and worker processes.

Used by the demo, the test suite and the benchmarks, so all three run the product the way
production does (separate processes, real Redis, real HTTP), and all clean up after
themselves.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

from ig_outbound.harness.env import inherited_env, settings_env
from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.wait import wait_until
from ig_outbound.worker.settings import Settings


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], grace_s: float, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class RedisServer:
    """A private `redis-server` on a free loopback port; can be killed and restarted."""

    port: int = field(default_factory=free_port)
    persistent: bool = False
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="igo-redis-")))
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalStackError(
                "redis-server is not on PATH: install it (Debian: apt-get install redis-server) "
                "or set IG_OUTBOUND_REDIS_URL to a Redis you run"
            )
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        proc = self._proc = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "redis.log"),
                "--daemonize", "no",
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def answers() -> bool:
            if proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise LocalStackError(f"redis-server exited at start:\n{log}")
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:
                return False

        try:
            wait_until(answers, timeout_s, f"redis-server on port {self.port}", poll_s=0.02)
        except TimeoutError:
            raise LocalStackError(f"redis-server did not answer on port {self.port}") from None
        finally:
            client.close()
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self._proc is not None:
            _stop(self._proc, 5.0, signal.SIGKILL if kill else signal.SIGTERM)
            self._proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class WorkerProcess:
    """One `ig-outbound worker` process with its own environment (settings).

    `WorkerProcess(env)` adds `env` to this process's environment; `from_settings` is the
    usual way: the worker runs exactly a `Settings` object."""

    env: Mapping[str, str]
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: object = None
    # Drop IG_OUTBOUND_* variables of this process's environment (the caller's shell must
    # not change what `env` says).
    isolated: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, log_path: Path | None = None) -> WorkerProcess:
        """A worker (not started yet) that runs exactly `settings`."""
        return cls(settings_env(settings), log_path=log_path, isolated=True)

    def start(self) -> WorkerProcess:
        env = {**(inherited_env() if self.isolated else os.environ), **self.env}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._log = out
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ig_outbound.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up (a crash, an OOM kill)."""
        if self._proc is not None:
            _stop(self._proc, 5.0, signal.SIGKILL)

    def stop(self, grace_s: float = 30.0) -> int | None:
        """SIGTERM, then wait for the drain; returns the exit code."""
        if self._proc is None:
            return None
        _stop(self._proc, grace_s)
        code = self._proc.returncode
        if hasattr(self._log, "close"):
            self._log.close()
        return code
