"""The subscription handshake [IGL-WH, MSG-WH]: the challenge for the right token only."""

from __future__ import annotations

import pytest

from ig_outbound.producers.errors import OutboundError
from ig_outbound.producers.webhooks import WebhookError, subscription_challenge

TOKEN = "my-verify-token"
GOOD = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": TOKEN}


def test_the_right_token_returns_the_challenge_as_sent() -> None:
    assert subscription_challenge(GOOD, TOKEN) == "1158201444"


def test_a_non_ascii_token_is_compared_too() -> None:
    params = {**GOOD, "hub.verify_token": "jeton-é"}
    assert subscription_challenge(params, "jeton-é") == "1158201444"


@pytest.mark.parametrize("token", ["other-token", "", TOKEN + " ", TOKEN.upper(), "jeton-é"])
def test_a_wrong_token_is_refused_with_403(token: str) -> None:
    with pytest.raises(WebhookError) as caught:
        subscription_challenge({**GOOD, "hub.verify_token": token}, TOKEN)
    assert caught.value.code == "wrong_verify_token"
    assert caught.value.status == 403


def test_a_missing_token_is_refused_with_403() -> None:
    params = {k: v for k, v in GOOD.items() if k != "hub.verify_token"}
    with pytest.raises(WebhookError) as caught:
        subscription_challenge(params, TOKEN)
    assert (caught.value.code, caught.value.status) == ("wrong_verify_token", 403)


@pytest.mark.parametrize("mode", ["unsubscribe", "", "SUBSCRIBE", None])
def test_another_mode_is_not_a_subscription(mode: str | None) -> None:
    params = {k: v for k, v in GOOD.items() if k != "hub.mode"}
    if mode is not None:
        params["hub.mode"] = mode
    with pytest.raises(WebhookError) as caught:
        subscription_challenge(params, TOKEN)
    assert (caught.value.code, caught.value.status) == ("not_a_subscription", 400)


def test_php_style_underscored_names_are_not_read() -> None:
    params = {"hub_mode": "subscribe", "hub_challenge": "1", "hub_verify_token": TOKEN}
    with pytest.raises(WebhookError) as caught:
        subscription_challenge(params, TOKEN)
    assert caught.value.code == "not_a_subscription"


@pytest.mark.parametrize("challenge", [None, ""])
def test_a_missing_challenge_is_malformed(challenge: str | None) -> None:
    params = {k: v for k, v in GOOD.items() if k != "hub.challenge"}
    if challenge is not None:
        params["hub.challenge"] = challenge
    with pytest.raises(WebhookError) as caught:
        subscription_challenge(params, TOKEN)
    assert (caught.value.code, caught.value.status) == ("missing_challenge", 400)


def test_the_error_is_an_outbound_error_with_a_machine_readable_dict() -> None:
    with pytest.raises(OutboundError) as caught:
        subscription_challenge({**GOOD, "hub.verify_token": "x"}, TOKEN)
    assert isinstance(caught.value, WebhookError)
    described = caught.value.as_dict()
    assert described["error"] == "wrong_verify_token" and described["status"] == 403
    assert TOKEN not in str(described)


def test_an_empty_configured_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="verify_token"):
        subscription_challenge({**GOOD, "hub.verify_token": ""}, "")
