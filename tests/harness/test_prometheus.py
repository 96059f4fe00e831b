"""The harness's Prometheus: it scrapes what it is given, answers queries, tells a bad
expression from a good one, fails clearly at start, and leaves nothing behind."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ig_outbound.harness.errors import LocalStackError
from ig_outbound.harness.prometheus import PrometheusQueryError, PrometheusServer

METRICS_PATH = "/custom-metrics"
SERVED = '# TYPE igo_test_value gauge\nigo_test_value{kind="fixed"} 42\n'


class _FixedMetrics(BaseHTTPRequestHandler):
    """Serves `SERVED` on `METRICS_PATH` only (a wrong path would show as a down target)."""

    def do_GET(self) -> None:
        body = SERVED.encode()
        self.send_response(200 if self.path == METRICS_PATH else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keeps the test's output quiet


@pytest.fixture
def metrics_target() -> Iterator[str]:
    """`host:port` of a tiny server that serves a fixed metrics text, in a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FixedMetrics)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_scrapes_a_target_answers_queries_and_leaves_nothing(metrics_target: str) -> None:
    server = PrometheusServer(
        jobs={"fixed": [metrics_target]}, metrics_paths={"fixed": METRICS_PATH}
    )
    with server:
        pid = server.pid
        assert pid is not None
        rows = server.wait_for('igo_test_value{job="fixed"}', lambda r: bool(r), timeout_s=20)
        assert rows[0]["metric"]["kind"] == "fixed"
        assert server.query_value('igo_test_value{job="fixed"}') == 42.0
        assert server.query_value("igo_no_such_metric") is None
        assert server.query_value("1 + 1") == 2.0  # a scalar result
        [target] = server.targets()
        assert target["health"] == "up"
        assert target["scrapeUrl"].endswith(METRICS_PATH)
        with pytest.raises(PrometheusQueryError, match="parse error"):
            server.query("sum(")
    assert not server.alive()
    assert _gone(pid)
    assert not server.workdir.exists()


@pytest.mark.slow
def test_check_query_tells_a_bad_expression_from_a_good_one() -> None:
    with PrometheusServer() as server:
        error = server.check_query("sum(")
        assert error is not None and "parse error" in error
        # Valid, and simply no data in an empty server.
        assert server.check_query("rate(up[1m])") is None
        assert server.check_query('sum by (le) (rate(igo_x_bucket{a=~".*"}[1m]))') is None


def test_a_missing_binary_says_so_and_leaves_no_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    server = PrometheusServer()
    with pytest.raises(LocalStackError, match="prometheus is not on PATH"), server:
        pass
    assert not server.workdir.exists()


@pytest.mark.slow
def test_a_bad_rule_file_fails_at_start_with_the_log(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n")
    server = PrometheusServer(rule_files=[rules])
    with pytest.raises(LocalStackError, match="exited at start") as caught, server:
        pass
    assert "could not parse expression" in str(caught.value)  # the cause, not the shutdown
    assert not server.alive()
    assert not server.workdir.exists()
