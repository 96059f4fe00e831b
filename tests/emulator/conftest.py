"""One emulator process for the whole emulator test package, reset before every test."""

from __future__ import annotations

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
