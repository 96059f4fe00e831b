"""Tokens age on the emulator's clock: 60 days, refresh after 24 h, revocation, no leaks.

All over real HTTP against the shared emulator process; ``advance_clock`` stands in for the
days that pass.
"""

from __future__ import annotations

import re

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl, token_fingerprint
from ig_outbound.emulator.graph_errors import graph_time
from tests.emulator.conftest import IG_A, IG_B, TOKEN_A, TOKEN_B, USER_1, error_of
from tests.emulator.tokens_helpers import (
    DAY,
    HOUR,
    LIFETIME_S,
    MINUTE,
    assert_190,
    me,
    refresh,
    refreshed_token,
    send,
    token_error,
    works,
)


@pytest.fixture(autouse=True)
def _no_window(control: EmulatorControl) -> None:
    # Days pass in these tests; the 24 h messaging window is not what they are about.
    control.set_window(enforced=False)


EXPIRED = re.compile(
    r"^Error validating access token: Session has expired on (.+)\. "
    r"The current time is (.+)\.$"
)


# --- expiry ---------------------------------------------------------------------------------


def test_a_token_lives_60_days_on_the_emulator_clock(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    [described] = control.tokens(IG_A)
    assert described["expires_at"] - described["issued_at"] == LIFETIME_S
    assert (described["state"], described["origin"]) == ("valid", "configured")
    assert described["fingerprint"] == token_fingerprint(TOKEN_A)
    control.advance_clock(LIFETIME_S - MINUTE)
    assert works(graph)
    control.advance_clock(2 * MINUTE)
    error = assert_190(send(graph, TOKEN_A), 463, TOKEN_A)
    match = EXPIRED.match(error["message"])
    assert match is not None, error["message"]
    assert match.group(1) == graph_time(described["expires_at"])
    assert error["fbtrace_id"]
    assert_190(send(graph, TOKEN_B, IG_B), 463, TOKEN_B)  # issued at the same start
    [described] = control.tokens(IG_A)
    assert described["state"] == "expired"
    stats = control.stats()
    assert stats["rejected_by_error"] == {"190/463": 2}
    assert stats["accepted"] == 1


def test_unknown_token_keeps_plain_190(graph: httpx.Client) -> None:
    error = assert_190(send(graph, "IGAAnever-issued-token"), None, "IGAAnever-issued-token")
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"


def test_configured_age_and_lifetime_survive_reset(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    ig_id, token = "17841400000000051", "IGAAaged-token-secret-51"
    control.add_account(ig_id, token, "aged", ["5260000000000051"], token_age_s=59 * DAY)
    [described] = control.tokens(ig_id)
    assert described["expires_at"] - control.clock()["now"] == pytest.approx(DAY, abs=5)
    control.advance_clock(DAY + MINUTE)
    assert_190(send(graph, token, ig_id), 463, token)
    control.reset()  # issued again, as old as configured
    assert works(graph, token, ig_id, "5260000000000051")
    short_ig, short = "17841400000000052", "IGAAshort-token-secret-52"
    control.add_account(short_ig, short, "short", ["5260000000000052"], token_lifetime_s=HOUR)
    control.advance_clock(HOUR + 1)
    assert_190(send(graph, short, short_ig), 463, short)


# --- refresh ---------------------------------------------------------------------------------


def test_refresh_is_refused_under_24_hours(graph: httpx.Client, control: EmulatorControl) -> None:
    control.advance_clock(DAY - MINUTE)
    response = refresh(graph, TOKEN_A)
    assert token_error(response) == (400, "OAuthException", 100, None)
    assert "24 hours" in error_of(response)["message"]
    assert TOKEN_A not in response.text
    assert len(control.tokens(IG_A)) == 1  # nothing issued
    assert works(graph)


def test_refresh_after_24_hours_issues_a_new_token(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(DAY)
    response = refresh(graph, TOKEN_A)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == LIFETIME_S
    new = body["access_token"]
    assert new.startswith("IGAA") and len(new) > 100 and new != TOKEN_A
    assert works(graph, new, IG_A)
    assert works(graph, new, "me", USER_1)
    assert me(graph, new, "user_id").json()["user_id"] == IG_A
    old, fresh = control.tokens(IG_A)
    assert (old["state"], fresh["state"]) == ("valid", "valid")  # default: old stays valid
    assert works(graph, TOKEN_A)
    assert fresh["fingerprint"] == token_fingerprint(new)
    assert (fresh["origin"], fresh["refreshed_from"]) == ("refreshed", old["fingerprint"])
    assert fresh["issued_at"] == pytest.approx(control.clock()["now"], abs=5)


def test_versioned_path_and_bearer_header_refresh_too(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(DAY)
    response = graph.get(
        "/v25.0/refresh_access_token",
        params={"grant_type": "ig_refresh_token"},
        headers={"Authorization": f"Bearer {TOKEN_A}"},
    )
    assert response.status_code == 200, response.text
    bad = refresh(graph, TOKEN_A, prefix="/25.0")
    assert error_of(bad)["code"] == 2500  # not a version: an unknown path, as for sends


def test_old_token_is_superseded_when_revoke_on_refresh(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    assert control.set_token_settings(revoke_on_refresh=True)["revoke_on_refresh"] is True
    control.advance_clock(DAY)
    new = refreshed_token(graph, TOKEN_A)
    assert works(graph, new)
    error = assert_190(send(graph, TOKEN_A), 467, TOKEN_A, new)
    assert error["message"].startswith("Error validating access token:")
    assert_190(refresh(graph, TOKEN_A), 467, TOKEN_A, new)  # nor can it be refreshed again
    assert [t["state"] for t in control.tokens(IG_A)] == ["superseded", "valid"]
    control.reset()  # back to the configured settings and token
    assert control.token_settings()["revoke_on_refresh"] is False
    assert works(graph)
    assert_190(send(graph, new), None, new)  # refreshed tokens are forgotten


def test_refreshed_token_expires_60_days_after_the_refresh(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(10 * DAY)
    new = refreshed_token(graph, TOKEN_A)
    control.advance_clock(LIFETIME_S - 10 * DAY + MINUTE)
    assert_190(send(graph, TOKEN_A), 463, TOKEN_A)  # the original lived 60 days from start
    assert works(graph, new)
    control.advance_clock(10 * DAY - 2 * MINUTE)
    assert works(graph, new)
    control.advance_clock(2 * MINUTE)
    assert_190(send(graph, new), 463, new)
    assert [t["state"] for t in control.tokens(IG_A)] == ["expired", "expired"]


def test_a_refreshed_token_can_be_refreshed_again_after_24_hours(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(DAY)
    second = refreshed_token(graph, TOKEN_A)
    assert token_error(refresh(graph, second))[2] == 100  # too young
    control.advance_clock(DAY)
    third = refreshed_token(graph, second)
    chain = control.tokens(IG_A)
    assert [t["refreshed_from"] for t in chain] == [
        None,
        token_fingerprint(TOKEN_A),
        token_fingerprint(second),
    ]
    assert chain[2]["fingerprint"] == token_fingerprint(third)


def test_expired_or_unknown_token_cannot_be_refreshed(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.advance_clock(LIFETIME_S + DAY)
    assert_190(refresh(graph, TOKEN_A), 463, TOKEN_A)
    assert_190(refresh(graph, "IGAAnot-a-real-token"), None, "IGAAnot-a-real-token")
    assert_190(refresh(graph, None), None)
    assert len(control.tokens(IG_A)) == 1


@pytest.mark.parametrize("grant_type", [None, "", "refresh_token", TOKEN_B])
def test_grant_type_must_be_ig_refresh_token(
    graph: httpx.Client, control: EmulatorControl, grant_type: str | None
) -> None:
    control.advance_clock(DAY)
    response = refresh(graph, TOKEN_A, grant_type=grant_type)
    assert token_error(response)[1:] == ("OAuthException", 100, None)
    assert "grant_type" in error_of(response)["message"]
    assert TOKEN_A not in response.text and TOKEN_B not in response.text


def test_refreshes_are_counted_by_result(graph: httpx.Client, control: EmulatorControl) -> None:
    refresh(graph, TOKEN_A)  # too early
    control.advance_clock(DAY)
    refresh(graph, TOKEN_A)
    refresh(graph, TOKEN_A, grant_type="nope")
    refresh(graph, "IGAAunknown")
    control.advance_clock(LIFETIME_S)
    refresh(graph, TOKEN_A)
    assert control.graph_calls()["refresh_access_token"] == {
        "too_early": 1,
        "refreshed": 1,
        "bad_grant_type": 1,
        "unknown_token": 1,
        "expired": 1,
    }


# --- revocation and registration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcode", "text"),
    [
        (460, "changed their password"),
        (458, "has not authorized application"),
        (467, "invalid"),
    ],
)
def test_revoked_tokens_answer_190_with_the_subcode(
    graph: httpx.Client, control: EmulatorControl, subcode: int, text: str
) -> None:
    [revoked] = control.revoke_tokens(IG_A, subcode)
    assert (revoked["state"], revoked["subcode"]) == ("revoked", subcode)
    error = assert_190(send(graph, TOKEN_A), subcode, TOKEN_A)
    assert text in error["message"]
    assert_190(me(graph, TOKEN_A, "username"), subcode, TOKEN_A)
    assert_190(refresh(graph, TOKEN_A), subcode, TOKEN_A)
    assert works(graph, TOKEN_B, IG_B)
    assert control.stats()["rejected_by_error"] == {f"190/{subcode}": 1}
    control.reset()
    assert works(graph)


def test_registered_token_works_beside_the_configured_one(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    login = "IGAAoperator-logged-in-again-01"
    described = control.register_token(IG_A, login, age_s=DAY, lifetime_s=2 * DAY)
    assert (described["state"], described["origin"]) == ("valid", "registered")
    assert described["expires_at"] - described["issued_at"] == 2 * DAY
    assert works(graph, login) and works(graph)
    assert refresh(graph, login).status_code == 200  # a day old already
    control.revoke_tokens(IG_A, 460, tokens=[TOKEN_A])
    assert_190(send(graph, TOKEN_A), 460, TOKEN_A)
    assert works(graph, login)
    control.advance_clock(DAY + MINUTE)
    assert_190(send(graph, login), 463, login)
    control.reset()
    assert_190(send(graph, login), None, login)  # registered tokens are forgotten
    assert works(graph)


def test_token_registration_refusals_never_echo_the_token(
    emulator_url: str, control: EmulatorControl
) -> None:
    base = f"{emulator_url}/_emulator/accounts"
    answers = [
        httpx.post(f"{base}/{IG_A}/tokens", json={"token": TOKEN_B}),  # another account's
        httpx.post(f"{base}/{IG_A}/tokens", json={"token": TOKEN_A}),  # already its own
        httpx.post(f"{base}/17841499999999999/tokens", json={"token": "IGAAfor-nobody-1"}),
        httpx.post(f"{base}/{IG_A}/tokens", json={"token": "IGAAbad-age-1", "age_s": -1}),
        httpx.post(f"{base}/{IG_A}/tokens/revoke", json={"subcode": 999}),
        httpx.post(f"{base}/{IG_A}/tokens/revoke", json={"fingerprints": [TOKEN_A]}),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 422, 422, 422]
    for answer in answers:
        for token in (TOKEN_A, TOKEN_B, "IGAAfor-nobody-1", "IGAAbad-age-1"):
            assert token not in answer.text
    assert len(control.tokens(IG_A)) == 1


# --- never a token in control output or errors -----------------------------------------------


def test_no_control_route_or_error_shows_a_token(
    graph: httpx.Client, control: EmulatorControl, emulator_url: str
) -> None:
    login = "IGAAleak-check-login-token-9"
    texts: list[str] = []
    control.register_token(IG_B, login)
    control.advance_clock(DAY)
    new = refreshed_token(graph, TOKEN_A)  # the one answer allowed to carry a token: its own
    control.set_token_settings(revoke_on_refresh=True)
    newer = refreshed_token(graph, login)
    texts += [
        send(graph, login).text,  # superseded
        refresh(graph, new).text,  # too early
        refresh(graph, new, grant_type="x").text,
        me(graph, new, "nope").text,
        me(graph, new, node=IG_B).text,
        graph.post(
            f"/v23.0/{IG_B}/subscribed_apps",
            params={"subscribed_fields": "messages"},
            headers={"Authorization": f"Bearer {new}"},
        ).text,
    ]
    control.revoke_tokens(IG_A, 460)
    texts += [send(graph, TOKEN_A).text, send(graph, new).text, refresh(graph, new).text]
    control.advance_clock(LIFETIME_S)
    texts += [send(graph, newer).text, me(graph, TOKEN_B).text]
    for path in (
        f"accounts/{IG_A}/tokens",
        f"accounts/{IG_B}/tokens",
        "tokens/settings",
        "subscriptions",
        "accounts",
        "stats",
        "calls",
    ):
        texts.append(httpx.get(f"{emulator_url}/_emulator/{path}").text)
    joined = "\n".join(texts)
    assert token_fingerprint(new) in joined  # described ...
    for token in (TOKEN_A, TOKEN_B, login, new, newer):
        assert token not in joined  # ... never shown
