"""One emulator process for the whole emulator test package, reset before every test; and one
with its media host (`media_emulator`), reset by the tests that use it."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ig_outbound.emulator import (
    AccountConfig,
    CommentConfig,
    EmulatorConfig,
    EmulatorControl,
    MediaConfig,
    RateLimitConfig,
    run_emulator_process,
)

IG_A = "17841400000000001"
IG_B = "17841400000000002"
TOKEN_A = "IGAAtokenA-very-secret-0001"
TOKEN_B = "IGAAtokenB-very-secret-0002"
USER_1 = "1254477777772919"
USER_2 = "5260000000000001"
USER_B = "5260000000000002"
COMMENT = "17900000000000001"
COMMENTER = "5260000000000099"


def base_config() -> EmulatorConfig:
    return EmulatorConfig(
        accounts=[
            AccountConfig(ig_id=IG_A, token=TOKEN_A, username="shop_a"),
            AccountConfig(ig_id=IG_B, token=TOKEN_B, username="shop_b"),
        ],
        users={IG_A: [USER_1, USER_2], IG_B: [USER_B]},
        # Off here (bursts in many tests); tests/emulator/test_rate_limits.py turns it on.
        rate_limits=RateLimitConfig(enabled=False),
        comments=[
            CommentConfig(
                comment_id=COMMENT, ig_id=IG_A, commenter_igsid=COMMENTER, created_at=time.time()
            )
        ],
    )


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    with run_emulator_process(base_config()) as url:
        yield url


@pytest.fixture(scope="session")
def control(emulator_url: str) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulator_url) as ctl:
        yield ctl


@pytest.fixture(scope="session")
def graph(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10.0) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh(control: EmulatorControl) -> None:
    control.reset()


@pytest.fixture(scope="session")
def media_emulator_url() -> Iterator[str]:
    """An emulator serving media (a throwaway CA made by `run_emulator_process`)."""
    config = base_config().model_copy(update={"media": MediaConfig(enabled=True)})
    with run_emulator_process(config) as url:
        yield url


@pytest.fixture(scope="session")
def media_control(media_emulator_url: str) -> Iterator[EmulatorControl]:
    with EmulatorControl(media_emulator_url) as ctl:
        yield ctl


@pytest.fixture
def media_emulator(media_control: EmulatorControl) -> EmulatorControl:
    """The media emulator's control, its run reset (calls, counters, the media log)."""
    media_control.reset()
    return media_control


@pytest.fixture(scope="session")
def media_graph(media_emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=media_emulator_url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="session")
def media_https(media_control: EmulatorControl) -> Iterator[httpx.Client]:
    """A client of the media host that trusts its CA and nothing else."""
    trust = ssl.create_default_context(cafile=media_control.media_ca_file())
    with httpx.Client(verify=trust, timeout=10.0) as client:
        yield client


def post(
    graph: httpx.Client,
    body: dict[str, Any],
    *,
    token: str | None = TOKEN_A,
    node: str = IG_A,
    version: str = "v23.0",
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return graph.post(f"/{version}/{node}/messages", json=body, headers=headers)


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error
