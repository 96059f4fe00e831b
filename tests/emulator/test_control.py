"""Control endpoints: run-time registration, incremental reads, and no token ever shown."""

from __future__ import annotations

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl
from tests.emulator.conftest import IG_A, TOKEN_A, TOKEN_B, USER_1, post

NEW_IG = "17841400000000042"
NEW_TOKEN = "IGAAruntime-secret-token-42"
NEW_USER = "5260000000000042"


def test_register_account_and_users_at_run_time(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    assert control.add_account(NEW_IG, NEW_TOKEN, "runtime_shop") == {
        "ig_id": NEW_IG,
        "username": "runtime_shop",
    }
    body = {"recipient": {"id": NEW_USER}, "message": {"text": "hi"}}
    assert post(graph, body, token=NEW_TOKEN, node=NEW_IG).json()["error"]["error_subcode"] == (
        2534014
    )
    assert control.add_users(NEW_IG, [NEW_USER]) == 1
    assert post(graph, body, token=NEW_TOKEN, node=NEW_IG).status_code == 200
    assert {"ig_id": NEW_IG, "username": "runtime_shop"} in control.accounts()


def test_reset_keeps_accounts(graph: httpx.Client, control: EmulatorControl) -> None:
    control.add_account("17841400000000043", "IGAAanother-secret-43", "kept", ["5260000000000043"])
    control.reset()
    body = {"recipient": {"id": "5260000000000043"}, "message": {"text": "hi"}}
    assert post(graph, body, token="IGAAanother-secret-43", node="me").status_code == 200


def test_calls_since_reads_incrementally(graph: httpx.Client, control: EmulatorControl) -> None:
    text = {"recipient": {"id": USER_1}, "message": {"text": "x"}}
    post(graph, text)
    post(graph, text, token="bad-token")
    first = control.calls()
    assert (first["next_since"], first["next_rejected_since"]) == (1, 1)
    post(graph, text)
    later = control.calls(since=first["next_since"], rejected_since=first["next_rejected_since"])
    assert [c["index"] for c in later["calls"]] == [1]
    assert later["rejected"] == []


def test_stats_count_accepted_and_rejected(graph: httpx.Client, control: EmulatorControl) -> None:
    text = {"recipient": {"id": USER_1}, "message": {"text": "x"}}
    post(graph, text)
    post(graph, {"recipient": {"id": "1"}, "message": {"text": "x"}})
    post(graph, text, token=None)
    stats = control.stats()
    assert stats["accepted"] == 1
    assert stats["accepted_by_account"] == {IG_A: 1}
    assert stats["rejected_by_code"] == {"100": 1, "190": 1}
    assert stats["rejected_by_error"] == {"100/2534014": 1, "190": 1}


def test_duplicate_token_is_refused_without_echo(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        control.add_account("17841400000000044", TOKEN_A, "thief")
    assert info.value.response.status_code == 400
    assert TOKEN_A not in info.value.response.text


def test_control_output_never_contains_tokens(
    graph: httpx.Client, control: EmulatorControl, emulator_url: str
) -> None:
    secret = "IGAAleak-check-secret-77"
    texts = [
        httpx.post(
            f"{emulator_url}/_emulator/accounts",
            json={"ig_id": "17841400000000077", "token": secret, "username": "leak"},
        ).text,
        # A rejected registration must not echo its input either.
        httpx.post(
            f"{emulator_url}/_emulator/accounts",
            json={"ig_id": "not-digits", "token": secret, "username": "leak"},
        ).text,
    ]
    text = {"recipient": {"id": USER_1}, "message": {"text": "x"}}
    post(graph, text)
    graph.post("/v23.0/me/messages", params={"access_token": TOKEN_A}, json=text)
    graph.post("/v23.0/me/messages", data={"access_token": TOKEN_A, "recipient": "{"})
    post(graph, text, token=secret + "-wrong")
    for path in ("health", "calls", "stats", "faults", "accounts"):
        texts.append(httpx.get(f"{emulator_url}/_emulator/{path}").text)
    joined = "\n".join(texts)
    assert "leak" in joined  # the account was listed ...
    for token in (secret, TOKEN_A, TOKEN_B):
        assert token not in joined  # ... but never with its token


def test_health(emulator_url: str) -> None:
    response = httpx.get(f"{emulator_url}/_emulator/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
