"""Webhooks over real HTTP: the shared emulator process POSTs to a receiver in this process.

The receiver is a threaded ``http.server`` that keeps the exact bytes and headers of each
request and answers from a script. Waiting is ``EmulatorControl.wait_for_webhooks`` (polls
until delivered or given up), never a sleep.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl, WebhookConfig, run_emulator_process
from tests.emulator.conftest import IG_A, USER_1, base_config, post
from tests.emulator.webhook_checks import assert_signed, assert_well_formed

SECRET = "http-app-secret"
HANG = "hang"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    # Answers for the next requests: a status, or HANG (no answer until released).
    script: deque[int | str] = field(default_factory=deque)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.script.clear()
            self.release = threading.Event()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                receiver.requests.append(Request(self.path, dict(self.headers.items()), body))
                answer = receiver.script.popleft() if receiver.script else 200
                release = receiver.release
            if answer == HANG:
                release.wait(timeout=10)  # the emulator's timeout ends it first
                return
            assert isinstance(answer, int)
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    receiver = Receiver(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    httpd.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/instagram"
    thread = threading.Thread(target=httpd.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def receiver(server: Receiver, control: EmulatorControl) -> Iterator[Receiver]:
    server.clear()
    control.set_webhooks(
        url=server.url, app_secret=SECRET, retry_backoff_s=0.01, retry_backoff_max_s=0.05
    )
    yield server
    server.release.set()


def test_echo_arrives_signed_over_the_exact_bytes(
    receiver: Receiver, graph: httpx.Client, control: EmulatorControl
) -> None:
    text = "Größe äöå 😊"
    response = post(graph, {"recipient": {"id": USER_1}, "message": {"text": text}})
    [hook] = control.wait_for_webhooks(1)
    assert hook["state"] == "delivered"
    [request] = receiver.requests
    assert request.path == "/webhooks/instagram"
    assert request.headers["Content-Type"] == "application/json"
    assert_signed(SECRET, request.body, request.headers["X-Hub-Signature-256"])
    assert request.body == hook["body"].encode()
    assert b"\\u00e4\\u00f6\\u00e5" in request.body  # escaped unicode, as Meta signs it
    [entry] = assert_well_formed(request.body)
    message = entry["messaging"][0]["message"]
    assert (message["mid"], message["text"], message["is_echo"]) == (
        response.json()["message_id"],
        text,
        True,
    )
    assert control.stats()["webhooks"]["delivered"] == 1


def test_retried_until_200_then_counted(
    receiver: Receiver, graph: httpx.Client, control: EmulatorControl
) -> None:
    receiver.script.extend([500, 429, 502])
    control.user_message(IG_A, USER_1, "hello?")
    [hook] = control.wait_for_webhooks(1)
    assert [a["status"] for a in hook["attempts"]] == [500, 429, 502, 200]
    assert hook["state"] == "delivered"
    assert len({r.body for r in receiver.requests}) == 1
    stats = control.stats()["webhooks"]
    assert (stats["delivered"], stats["retried"], stats["given_up"]) == (1, 3, 0)


def test_a_timeout_is_retried(
    receiver: Receiver, graph: httpx.Client, control: EmulatorControl
) -> None:
    control.set_webhooks(timeout_s=0.2)
    receiver.script.append(HANG)
    control.user_message(IG_A, USER_1, "slow receiver")
    [hook] = control.wait_for_webhooks(1)
    assert [(a["status"], a["error"]) for a in hook["attempts"]] == [
        (None, "ReadTimeout"),
        (200, None),
    ]


def test_given_up_after_retries_when_nobody_listens(control: EmulatorControl) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"  # bound, never listening
        control.set_webhooks(url=closed, retries=2, retry_backoff_s=0.01)
        control.user_comment(IG_A, "5260000000000501", "Price?")
        [hook] = control.wait_for_webhooks(1)
    assert hook["kinds"] == ["comment"]
    assert hook["state"] == "given_up"
    assert [a["error"] for a in hook["attempts"]] == ["ConnectError"] * 3
    assert control.stats()["webhooks"]["given_up"] == 1


def test_users_act_on_their_own_in_the_process(
    receiver: Receiver, control: EmulatorControl
) -> None:
    control.set_simulated_users(rate_per_s=200, seed=9)
    hooks = control.wait_for_webhooks(5, settled=False)
    control.set_simulated_users(rate_per_s=0)
    assert len(hooks) >= 5
    control.wait_for_webhooks(len(hooks))
    for request in list(receiver.requests):
        assert_signed(SECRET, request.body, request.headers["X-Hub-Signature-256"])
        assert_well_formed(request.body)


def test_settings_keep_the_secret_to_themselves(
    receiver: Receiver, emulator_url: str, control: EmulatorControl
) -> None:
    texts = [
        httpx.get(f"{emulator_url}/_emulator/webhooks/settings").text,
        httpx.put(f"{emulator_url}/_emulator/webhooks/settings", json={"retries": 3}).text,
        httpx.put(
            f"{emulator_url}/_emulator/webhooks/settings", json={"app_secret": 5, "url": "x"}
        ).text,
        httpx.get(f"{emulator_url}/_emulator/stats").text,
    ]
    assert all(SECRET not in text for text in texts)
    assert control.webhook_settings()["retries"] == 3


def test_the_configured_url_and_secret_reach_a_new_process(server: Receiver) -> None:
    server.clear()
    hooks = WebhookConfig(url=server.url, app_secret="configured-secret", retry_backoff_s=0.01)
    config = base_config().model_copy(update={"webhooks": hooks})
    with run_emulator_process(config) as url, EmulatorControl(url) as control:
        event = control.user_message(IG_A, USER_1, "from the config")
        [hook] = control.wait_for_webhooks(1)
        assert "configured-secret" not in control.webhook_settings()["app_secret"]
    assert hook["state"] == "delivered"
    [request] = server.requests
    assert_signed("configured-secret", request.body, request.headers["X-Hub-Signature-256"])
    [entry] = assert_well_formed(request.body)
    assert entry["messaging"][0]["message"]["mid"] == event["mid"]
