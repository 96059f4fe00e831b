"""A private `prometheus` server for tests: scrapes the targets it is given, evaluates the
rule files it is given, answers PromQL, and checks that an expression parses.

Like `RedisServer` (processes.py): a free loopback port, a temporary directory for its
config, log and TSDB, and nothing left behind on exit (the process is stopped, then killed;
the directory is removed).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from ig_outbound.harness.errors import HarnessError, LocalStackError
from ig_outbound.harness.processes import ScratchServer, free_port
from ig_outbound.harness.wait import wait_until

Result = list[dict[str, Any]]


class PrometheusQueryError(HarnessError):
    """Prometheus refused a query (the message is Prometheus's own)."""


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise LocalStackError(
            "prometheus is not on PATH: install it (Debian: apt-get install prometheus)"
        )
    return binary


def _duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (milliseconds: "1.5s" is not one)."""
    return f"{max(1, round(seconds * 1000))}ms"


@dataclass
class PrometheusServer(ScratchServer):
    """A private `prometheus` on a free loopback port.

    `jobs` maps a job name to its `host:port` targets; `metrics_paths` gives a job another
    path than `/metrics`. `rule_files` are evaluated every `scrape_interval_s` too."""

    jobs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    metrics_paths: Mapping[str, str] = field(default_factory=dict)
    scrape_interval_s: float = 1.0
    rule_files: Sequence[Path] = ()
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="igo-prom-")))
    _proc: subprocess.Popen[bytes] | None = None
    _http: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self, timeout_s: float = 30.0) -> Self:
        unknown = set(self.metrics_paths) - set(self.jobs)
        if unknown:
            raise LocalStackError(f"metrics_paths for jobs that do not exist: {sorted(unknown)}")
        binary = _prometheus_binary()
        config = self.workdir / "prometheus.yml"
        # JSON is YAML: no YAML library needed to write the config.
        config.write_text(json.dumps(self._config(), indent=2), encoding="utf-8")
        with open(self.log_path, "ab") as log:
            # The child keeps its own copy of the descriptor.
            self._proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self._http = httpx.Client(base_url=self.url, timeout=5.0)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()  # nothing is left running behind a failed start
            raise
        return self

    def _config(self) -> dict[str, Any]:
        interval = _duration(self.scrape_interval_s)
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(Path(p).resolve()) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": self.metrics_paths.get(job, "/metrics"),
                    "static_configs": [{"targets": list(targets)}],
                }
                for job, targets in self.jobs.items()
            ],
        }

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait for `/-/ready`; a process that exits first (a bad config or rule file) fails
        at once with its log's tail, not as a slow start."""
        proc, http = self._proc, self._http
        assert proc is not None and http is not None
        what = f"prometheus on port {self.port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise LocalStackError(f"{what} exited at start:\n{self._errors()}")
            try:
                return http.get("/-/ready").status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout_s, what, poll_s=0.05)
        except TimeoutError:
            raise LocalStackError(f"{what} did not answer") from None

    def _errors(self) -> str:
        """Its log's error lines (the cause is often not in the tail, under the shutdown's
        lines), or the tail when it has none."""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        errors = [line for line in log.splitlines() if "level=error" in line]
        return "\n".join(errors)[-4000:] if errors else log[-2000:]

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise LocalStackError("the Prometheus server is not running (call start())")
        return self._http

    def _api(self, path: str, **params: str) -> Any:
        """GET an API path; its `data`, or `PrometheusQueryError` with Prometheus's
        message."""
        response = self._client().get(path, params=params)
        try:
            body = response.json()
        except ValueError:
            response.raise_for_status()
            raise PrometheusQueryError(f"{path}: not JSON: {response.text[:200]}") from None
        if body.get("status") != "success":
            kind = body.get("errorType", "error")
            raise PrometheusQueryError(f"{kind}: {body.get('error', response.text[:200])}")
        return body["data"]

    def query(self, expr: str) -> Result:
        """An instant query: its samples as Prometheus gives them (`{"metric": {...},
        "value": [time, "value"]}`); a scalar or string result is one sample without labels."""
        data = self._api("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: Result = data["result"]
        return result

    def query_value(self, expr: str) -> float | None:
        """The one value `expr` gives now, None when it gives none; an error when it gives
        several series (say which with a `sum` or a label matcher)."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusQueryError(f"{expr!r} gives {len(result)} series, not one")
        return float(result[0]["value"][1])

    def targets(self) -> Result:
        """The active scrape targets, each with `labels`, `scrapeUrl`, `health` ("up",
        "down", "unknown" before its first scrape) and `lastError`."""
        targets: Result = self._api("/api/v1/targets", state="active")["activeTargets"]
        return targets

    def wait_for(
        self, expr: str, predicate: Callable[[Result], bool], timeout_s: float = 30.0
    ) -> Result:
        """Query `expr` until `predicate(result)` holds; return that result. A query error
        fails at once; a timeout says what the last result was."""
        last: Result = []

        def holds() -> bool:
            nonlocal last
            last = self.query(expr)
            return predicate(last)

        try:
            wait_until(holds, timeout_s, f"{expr!r} on {self.url}", poll_s=0.1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc} (last result: {last})") from None
        return last

    def check_query(self, expr: str) -> str | None:
        """Prometheus's error for `expr` (a parse error, say), None when it is valid (an
        expression that finds no data is valid)."""
        try:
            self.query(expr)
        except PrometheusQueryError as exc:
            return str(exc)
        return None

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._proc is not None:
            _stop(self._proc, 10.0)
            self._proc = None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM (Prometheus closes its TSDB), SIGKILL after `grace_s`; always reaped."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
