"""A local stack of real processes: a private redis-server (plain, TLS only, or with ACL
users), a Redis Sentinel watching it, worker processes, gateway processes and the example
auto-responder.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Self

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

# Only the gateway's settings (pydantic): its web stack is its own process's business.
from ig_outbound.gateway.settings import GatewaySettings
from ig_outbound.harness.env import inherited_env, settings_env
from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.wait import wait_until
from ig_outbound.producers.connection import connect_sync
from ig_outbound.producers.examples.auto_responder import GROUP as RESPONDER_GROUP
from ig_outbound.producers.keys import Keys
from ig_outbound.producers.settings import ClientSettings
from ig_outbound.worker.settings import Settings

if TYPE_CHECKING:
    # Only a type here: the certificates (and `cryptography`) are the caller's business.
    from ig_outbound.harness.tls import TlsFiles

# The gateway's webhook route (`ig_outbound.gateway.app.WEBHOOK_PATH`), spelled here because
# importing the app needs fastapi, which only the gateway's process needs.
WEBHOOK_PATH = "/webhooks/instagram"
AUTO_RESPONDER_MODULE = "ig_outbound.producers.examples.auto_responder"


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


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalStackError(
            "redis-server is not on PATH: install it (Debian: apt-get install redis-server) "
            "or set IG_OUTBOUND_REDIS_URL to a Redis you run"
        )
    return binary


def _wait_ready(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    log_path: Path,
    what: str,
    timeout_s: float,
) -> None:
    """Wait until `ready()`; a process that exits first fails at once with its log's tail
    (a bad argument or certificate must not look like a slow start)."""

    def answers() -> bool:
        if proc.poll() is not None:
            log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise LocalStackError(f"{what} exited at start:\n{log}")
        return ready()

    try:
        wait_until(answers, timeout_s, what, poll_s=0.02)
    except TimeoutError:
        _stop(proc, 5.0)  # nothing is left running behind a failed start
        raise LocalStackError(f"{what} did not answer") from None


class ManagedProcess:
    """A local process as a context manager: `start()` on enter (and `close()` if that
    fails: `with` calls no `__exit__` when `__enter__` raises), `close()` on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ScratchServer(ManagedProcess):
    """A server with a scratch directory (`workdir`) of its own, removed at `close()`."""

    workdir: Path

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class RedisServer(ScratchServer):
    """A private `redis-server` on a free loopback port; can be killed and restarted.

    With `tls` it listens with TLS only, on `port` (no plain port), and `url` is `rediss://`;
    `tls_auth_clients` says whether clients must show a certificate (`"yes"`: mutual TLS) or
    may (`"optional"`: the server is verified, clients are not). `extra_args` go last on the
    command line, so they win (`["--user", "app", "on", ">pw", "~*", "+@all"]` adds an ACL
    user, `["--user", "default", "off"]` turns the password-less default user off)."""

    port: int = field(default_factory=free_port)
    # AOF on, as ig-outbound requires of a production Redis (producers/redis_safety.py);
    # benchmarks turn it off and allow the data loss instead.
    persistent: bool = True
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="igo-redis-")))
    _proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None
    tls_auth_clients: Literal["yes", "optional", "no"] = "optional"
    extra_args: Sequence[str] = ()

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout_s: float = 10.0) -> Self:
        proc = self._proc = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = self._probe_client()

        def ready() -> bool:
            try:
                return bool(client.ping())
            # Up, but closed to strangers (default user off or without PING): it answered.
            except (redis.exceptions.AuthenticationError, redis.exceptions.NoPermissionError):
                return True
            except redis.exceptions.RedisError:
                return False

        try:
            _wait_ready(proc, ready, self.log_path, f"redis-server on port {self.port}", timeout_s)
        finally:
            client.close()
        return self

    def _command(self) -> list[str]:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        return [
            _redis_binary(),
            *self._listen_args(),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            *persistence,
            *self.extra_args,
        ]  # fmt: skip

    def _listen_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", self.tls_auth_clients,
        ]  # fmt: skip

    def _probe_client(self) -> redis.Redis:
        """A client that can reach this server whatever its TLS mode (it shows the client
        certificate, which `"yes"` requires and the other modes accept)."""
        if self.tls is None:
            return redis.Redis(port=self.port, socket_connect_timeout=0.2)
        return redis.Redis(
            port=self.port,
            socket_connect_timeout=0.2,
            ssl=True,
            ssl_ca_certs=str(self.tls.ca_cert),
            ssl_certfile=str(self.tls.client_cert),
            ssl_keyfile=str(self.tls.client_key),
        )

    def stop(self, *, kill: bool = False) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen server cannot stop
            _stop(self._proc, 5.0, signal.SIGKILL if kill else signal.SIGTERM)
            self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing (a hung host)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@dataclass
class SentinelServer(ScratchServer):
    """A private Redis Sentinel (`redis-server sentinel.conf --sentinel`) on a free loopback
    port, watching one primary as `master_name` with a quorum of 1: enough for clients that
    ask it for the primary by name (`redis_sentinels`, `redis_sentinel_master`).

    Sentinel rewrites its config file, so it lives in `workdir`. `extra_config` adds lines
    to it (`sentinel auth-pass <name> <password>` for a primary with a password)."""

    primary_port: int
    master_name: str = "igo-primary"
    primary_host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="igo-sentinel-")))
    extra_config: Sequence[str] = ()
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """`host:port`, as `redis_sentinels` takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sentinel.log"

    def start(self, timeout_s: float = 10.0) -> Self:
        conf = self.workdir / "sentinel.conf"
        conf.write_text(self._config(), encoding="utf-8")
        proc = self._proc = subprocess.Popen(
            [_redis_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, decode_responses=True)
        what = f"redis sentinel on port {self.port}"
        try:
            _wait_ready(proc, lambda: self._names_primary(client), self.log_path, what, timeout_s)
        finally:
            client.close()
        return self

    def _names_primary(self, client: redis.Redis) -> bool:
        """The sentinel answers and gives our primary's address for `master_name`."""
        try:
            # redis-py's sentinel commands carry no annotations.
            found = client.sentinel_get_master_addr_by_name(self.master_name)  # type: ignore[no-untyped-call]
        except redis.exceptions.RedisError:
            return False
        return bool(found == (self.primary_host, self.primary_port))

    def _config(self) -> str:
        name = self.master_name
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"logfile {self.log_path}",
            "daemonize no",
            f"sentinel monitor {name} {self.primary_host} {self.primary_port} 1",
            *self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        if self._proc is not None:
            _stop(self._proc, 5.0)
            self._proc = None


@dataclass
class WorkerProcess:
    """One `ig-outbound worker` process with its own environment (settings).

    `WorkerProcess(env)` adds `env` to this process's environment; `from_settings` is the
    usual way: the worker runs exactly a `Settings` object."""

    env: Mapping[str, str]
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    # Drop IG_OUTBOUND_* variables of this process's environment (the caller's shell must
    # not change what `env` says).
    isolated: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, log_path: Path | None = None) -> WorkerProcess:
        """A worker (not started yet) that runs exactly `settings`."""
        return cls(settings_env(settings), log_path=log_path, isolated=True)

    def start(self) -> WorkerProcess:
        command = ["-m", "ig_outbound.cli", "worker"]
        self._proc, self._log = _spawn(command, self.env, self.isolated, self.log_path)
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
        if self._log is not None:
            self._log.close()
        return code


def _spawn(
    args: Sequence[str], env: Mapping[str, str], isolated: bool, log_path: Path | None
) -> tuple[subprocess.Popen[bytes], IO[bytes] | None]:
    """`python <args>` with `env` on top of this process's environment (without its
    IG_OUTBOUND_* when `isolated`), stdout and stderr into `log_path`; returns the process
    and the open log, which the caller closes once the process is reaped."""
    full_env = {**(inherited_env() if isolated else os.environ), **env}
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=full_env,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    return proc, log


@dataclass
class GatewayProcess(ManagedProcess):
    """One `ig-outbound gateway` process (webhooks in, the HTTP intake), ready once its
    `/readyz` answers 200 (Redis answers and its processor runs).

    `from_settings` is the usual way: the gateway runs exactly a `GatewaySettings` object
    (`env.gateway_settings` builds one for a stack). It listens on `settings.gateway.port`,
    so the caller picks the port (`free_port()`) and can hand the webhook URL to the
    emulator before the gateway starts."""

    env: Mapping[str, str]
    port: int
    host: str = "127.0.0.1"
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, log_path: Path | None = None
    ) -> GatewayProcess:
        """A gateway (not started yet) that runs exactly `settings`."""
        section = settings.gateway
        # A wildcard address is reached on loopback.
        host = "127.0.0.1" if section.host in ("0.0.0.0", "::", "") else section.host
        return cls(settings_env(settings), port=section.port, host=host, log_path=log_path)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        """Where Instagram (the emulator) POSTs its webhooks."""
        return self.url + WEBHOOK_PATH

    def start(self, timeout_s: float = 30.0) -> Self:
        """Start it and wait until it is ready; a gateway that exits first (bad settings, a
        Redis it refuses) fails at once with its log's tail."""
        command = ["-m", "ig_outbound.cli", "gateway"]
        self._proc, self._log = _spawn(command, self.env, True, self.log_path)
        log = self.log_path or Path(os.devnull)
        with httpx.Client(timeout=1.0) as http:
            ready = partial(_answers_200, http, self.url + "/readyz")
            try:
                _wait_ready(self._proc, ready, log, f"gateway on {self.url}", timeout_s)
            except BaseException:
                self._close_log()
                raise
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ready(self) -> bool:
        with httpx.Client(timeout=2.0) as http:
            return _answers_200(http, self.url + "/readyz")

    def metrics(self) -> dict[str, float]:
        """Its Prometheus samples, `name{label="value",...}` (labels sorted) -> value."""
        response = httpx.get(self.url + "/metrics", timeout=5.0)
        response.raise_for_status()
        return parse_metrics(response.text)

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM (uvicorn finishes the requests in flight), SIGKILL after `grace_s`;
        returns the exit code."""
        if self._proc is None:
            return None
        _stop(self._proc, grace_s)
        self._close_log()
        return self._proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()


def _answers_200(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> `name{label="value",...}` (labels sorted) -> value."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def metric_total(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (`parse_metrics`'s keys)."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(w in rest.rstrip("}").split(",") for w in wanted):
            total += value
    return total


@dataclass
class ResponderProcess(ManagedProcess):
    """The example auto-responder as a service runs it, in its own process
    (`python -m ig_outbound.producers.examples.auto_responder`, settings from the
    environment); ready once its consumer group exists (it reads what comes after)."""

    settings: ClientSettings
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> Self:
        command = ["-m", AUTO_RESPONDER_MODULE]
        env = settings_env(self.settings)
        self._proc, self._log = _spawn(command, env, True, self.log_path)
        r = connect_sync(self.settings)
        try:
            keys = Keys(self.settings.key_prefix)
            ready = partial(_group_exists, r, keys.inbound, RESPONDER_GROUP)
            log = self.log_path or Path(os.devnull)
            _wait_ready(self._proc, ready, log, "the auto-responder", timeout_s)
        except BaseException:
            self.stop()
            raise
        finally:
            r.close()
        return self

    def caught_up(self) -> bool:
        """It has answered (acknowledged) every entry on the inbound stream so far."""
        r = connect_sync(self.settings)
        try:
            return group_caught_up(r, Keys(self.settings.key_prefix).inbound, RESPONDER_GROUP)
        finally:
            r.close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM (it keeps no state: what it read and did not acknowledge is read again by
        the group); returns the exit code."""
        if self._proc is None:
            return None
        _stop(self._proc, grace_s)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self._proc.returncode

    def close(self) -> None:
        self.stop()


def _group_exists(r: redis.Redis, stream: str, group: str) -> bool:
    try:
        groups: Any = r.xinfo_groups(stream)
    except redis.exceptions.ResponseError:  # no such stream yet
        return False
    return any(_text(g["name"]) == group for g in groups)


def group_caught_up(r: Any, stream: str, group: str) -> bool:
    """`group` has read up to `stream`'s last entry and acknowledged everything it read
    (a missing stream: nothing to read)."""
    if not r.exists(stream):
        return True
    found = {_text(g["name"]): g for g in r.xinfo_groups(stream)}.get(group)
    if found is None:
        return False
    last = _text(r.xinfo_stream(stream)["last-generated-id"])
    return int(found["pending"]) == 0 and _text(found["last-delivered-id"]) == last


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
