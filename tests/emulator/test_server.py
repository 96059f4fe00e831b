"""The subprocess helper (used by the session fixture too) and `python -m ig_outbound.emulator`."""

from __future__ import annotations

import socket

import httpx
import pytest

from ig_outbound.emulator import (
    AccountConfig,
    EmulatorConfig,
    EmulatorControl,
    run_emulator_process,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_explicit_port_and_clean_exit() -> None:
    port = _free_port()
    config = EmulatorConfig(
        accounts=[AccountConfig(ig_id="17841400000000100", token="IGAAsub-secret", username="s")],
        allow_any_recipient=True,
    )
    with run_emulator_process(config, port=port) as url:
        assert url == f"http://127.0.0.1:{port}"
        response = httpx.post(
            f"{url}/v24.0/me/messages",
            json={"recipient": {"id": "123456789"}, "message": {"text": "any recipient"}},
            headers={"Authorization": "Bearer IGAAsub-secret"},
        )
        assert response.status_code == 200, response.text
        with EmulatorControl(url) as control:
            assert control.stats()["accepted"] == 1
    # The process is gone: nothing answers on that port any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_emulator/health", timeout=1.0)


def test_startup_failure_reports_stderr() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="exited") as info:  # noqa: SIM117
            with run_emulator_process(EmulatorConfig(), port=port):
                pass
    assert "in use" in str(info.value).lower()
