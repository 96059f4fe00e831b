"""``GET /me`` and ``GET /{IG_ID}``, ``/{IG_ID}/subscribed_apps``, and webhooks held back for
accounts that did not subscribe (``webhooks.require_subscription``). Over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ig_outbound.emulator import AppConfig, EmulatorControl
from ig_outbound.emulator.subscriptions import KIND_FIELDS, Subscriptions
from tests.emulator.conftest import IG_A, IG_B, TOKEN_A, TOKEN_B, USER_1, error_of, post
from tests.emulator.tokens_helpers import LIFETIME_S, assert_190, me, send

ALL_FIELDS = "user_id,username,id,account_type,name"
APP = AppConfig()  # the emulator's default app (the shared emulator keeps it)


def subscribed_apps(
    graph: httpx.Client,
    method: str,
    *,
    token: str = TOKEN_A,
    node: str = IG_A,
    params: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return graph.request(
        method,
        f"/v25.0/{node}/subscribed_apps",
        params={**(params or {}), "access_token": token},
        **kwargs,
    )


def subscribe(graph: httpx.Client, fields: str, **kwargs: Any) -> httpx.Response:
    return subscribed_apps(graph, "POST", params={"subscribed_fields": fields}, **kwargs)


# --- GET /me ----------------------------------------------------------------------------------


def test_me_answers_the_fields_asked_for(graph: httpx.Client) -> None:
    response = me(graph, TOKEN_A, ALL_FIELDS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ALL_FIELDS.split(",")
    assert body["user_id"] == IG_A
    assert (body["username"], body["name"], body["account_type"]) == (
        "shop_a",
        "shop_a",
        "BUSINESS",
    )
    assert body["id"].isdigit() and body["id"] != IG_A
    assert me(graph, TOKEN_A, "id").json() == {"id": body["id"]}  # stable
    other = me(graph, TOKEN_B, "id,user_id").json()
    assert other["user_id"] == IG_B and other["id"] != body["id"]
    assert me(graph, TOKEN_A, "username").json() == {"username": "shop_a", "id": body["id"]}


def test_me_without_fields_is_the_id_only(graph: httpx.Client) -> None:
    [value] = me(graph, TOKEN_A).json().values()
    assert me(graph, TOKEN_A).json() == {"id": value}
    unversioned = graph.get("/me", params={"access_token": TOKEN_A})
    assert unversioned.json() == {"id": value}


def test_me_unknown_field_is_100(graph: httpx.Client) -> None:
    response = me(graph, TOKEN_A, "username,followers_secret")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100 and "error_subcode" not in error
    assert "(followers_secret)" in error["message"]


def test_node_read_by_ig_id_needs_that_accounts_token(graph: httpx.Client) -> None:
    body = me(graph, TOKEN_A, "user_id,username", node=IG_A).json()
    assert (body["user_id"], body["username"]) == (IG_A, "shop_a")
    response = me(graph, TOKEN_A, "username", node=IG_B)
    error = error_of(response)
    assert (response.status_code, error["code"], error["error_subcode"]) == (400, 100, 33)
    assert f"'{IG_B}'" in error["message"] and TOKEN_A not in response.text


def test_me_follows_the_token_life(graph: httpx.Client, control: EmulatorControl) -> None:
    assert_190(me(graph, "IGAAno-such-token", "id"), None, "IGAAno-such-token")
    control.advance_clock(LIFETIME_S + 1)
    assert_190(me(graph, TOKEN_A, "id"), 463, TOKEN_A)
    assert control.graph_calls()["me"] == {"unknown_token": 1, "expired": 1}


# --- subscribed_apps ----------------------------------------------------------------------------


def test_subscribe_list_and_unsubscribe(graph: httpx.Client, control: EmulatorControl) -> None:
    assert subscribed_apps(graph, "GET").json() == {"data": []}
    response = subscribe(graph, "messages,comments")
    assert (response.status_code, response.json()) == (200, {"success": True})
    listed = subscribed_apps(graph, "GET").json()
    assert listed == {
        "data": [{"subscribed_fields": ["messages", "comments"], "id": APP.id, "name": APP.name}]
    }
    subscriptions = control.subscriptions()  # every account; other tests add some
    assert (subscriptions[IG_A], subscriptions[IG_B]) == (["messages", "comments"], [])
    # A POST replaces the field set.
    assert subscribe(graph, "messaging_postbacks").json() == {"success": True}
    assert control.subscriptions()[IG_A] == ["messaging_postbacks"]
    deleted = subscribed_apps(graph, "DELETE")
    assert (deleted.status_code, deleted.json()) == (200, {"success": True})
    assert subscribed_apps(graph, "GET").json() == {"data": []}
    assert control.graph_calls()["subscribed_apps"] == {
        "listed": 3,
        "subscribed": 2,
        "unsubscribed": 1,
    }


@pytest.mark.parametrize(
    "how",
    [
        {"data": {"subscribed_fields": "messages, message_reactions"}},
        {"json": {"subscribed_fields": ["messages", "message_reactions"]}},
        {"json": {"subscribed_fields": "messages,message_reactions"}},
    ],
)
def test_subscribed_fields_from_form_or_json(
    graph: httpx.Client, control: EmulatorControl, how: dict[str, Any]
) -> None:
    response = subscribed_apps(graph, "POST", token=TOKEN_B, node="me", **how)
    assert response.json() == {"success": True}, response.text
    assert control.subscriptions()[IG_B] == ["messages", "message_reactions"]


def test_both_spellings_of_the_conflicting_fields(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    fields = "messaging_reactions,message_reactions,messaging_referral,messaging_referrals"
    assert subscribe(graph, fields).json() == {"success": True}
    assert control.subscriptions()[IG_A] == fields.split(",")


def test_unknown_field_is_100_naming_it(graph: httpx.Client, control: EmulatorControl) -> None:
    subscribe(graph, "messages")
    response = subscribe(graph, "comments,message_edits")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100
    assert "subscribed_fields[1]" in error["message"] and '"message_edits"' in error["message"]
    missing = subscribed_apps(graph, "POST")
    assert error_of(missing)["code"] == 100 and "subscribed_fields" in error_of(missing)["message"]
    assert control.subscriptions()[IG_A] == ["messages"]  # unchanged
    assert control.graph_calls()["subscribed_apps"]["bad_field"] == 2


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_subscribed_apps_of_another_account_is_100_33(
    graph: httpx.Client, control: EmulatorControl, method: str
) -> None:
    response = subscribed_apps(graph, method, node=IG_B, params={"subscribed_fields": "messages"})
    error = error_of(response)
    assert (response.status_code, error["code"], error["error_subcode"]) == (400, 100, 33)
    assert error["message"].startswith(f"Unsupported {method.lower()} request")
    assert TOKEN_A not in response.text
    subscriptions = control.subscriptions()
    assert (subscriptions[IG_A], subscriptions[IG_B]) == ([], [])


def test_subscriptions_follow_the_token_and_reset(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.revoke_tokens(IG_A, 458)
    assert_190(subscribe(graph, "messages"), 458, TOKEN_A)
    control.reset()
    assert subscribe(graph, "messages").json() == {"success": True}
    control.reset()  # subscriptions go back to the configured ones (none here)
    assert control.subscriptions()[IG_A] == []
    ig_id = "17841400000000061"
    control.add_account(ig_id, "IGAAsubscribed-61", "sub61", subscribed_fields=["comments"])
    control.reset()
    assert control.subscriptions()[ig_id] == ["comments"]


# --- webhooks only for subscribed accounts -----------------------------------------------------


@pytest.fixture
def strict_hooks(control: EmulatorControl) -> EmulatorControl:
    # Nothing listens on the discard port: webhooks are logged when queued, then given up.
    control.set_webhooks(url="http://127.0.0.1:9/hooks", retries=0, require_subscription=True)
    return control


def _kinds(control: EmulatorControl) -> list[str]:
    return [kind for hook in control.webhooks()["webhooks"] for kind in hook["kinds"]]


def test_unsubscribed_accounts_get_no_webhooks(
    graph: httpx.Client, strict_hooks: EmulatorControl
) -> None:
    control = strict_hooks
    assert control.user_message(IG_A, USER_1, "hello")["webhook"] is None
    assert control.user_comment(IG_A, USER_1)["webhook"] is None
    assert post(graph, {"recipient": {"id": USER_1}, "message": {"text": "x"}}).status_code == 200
    assert _kinds(control) == []
    assert control.stats()["webhooks_unsubscribed"] == {"message": 1, "comment": 1, "echo": 1}


def test_subscribed_fields_decide_which_webhooks_are_sent(
    graph: httpx.Client, strict_hooks: EmulatorControl
) -> None:
    control = strict_hooks
    subscribe(graph, "messages")
    assert control.user_message(IG_A, USER_1, "hello")["webhook"] is not None
    assert control.user_comment(IG_A, USER_1)["webhook"] is None  # not subscribed to comments
    assert send(graph, TOKEN_A, IG_A).status_code == 200  # its echo rides on "messages"
    subscribe(graph, "comments")
    assert control.user_comment(IG_A, USER_1)["webhook"] is not None
    assert control.user_message(IG_A, USER_1, "again")["webhook"] is None
    assert _kinds(control) == ["message", "echo", "comment"]
    assert control.stats()["webhooks_unsubscribed"] == {"comment": 1, "message": 1}


def test_without_require_subscription_every_account_gets_webhooks(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    control.set_webhooks(url="http://127.0.0.1:9/hooks", retries=0)
    assert control.user_message(IG_B, "5260000000000002", "hi")["webhook"] is not None
    assert control.user_comment(IG_A, USER_1)["webhook"] is not None
    assert control.stats()["webhooks_unsubscribed"] == {}


@pytest.mark.parametrize(
    ("kind", "field", "covered"),
    [
        ("message", "messages", True),
        ("message", "message_echoes", False),
        ("echo", "message_echoes", True),
        ("echo", "messages", True),
        ("reaction", "message_reactions", True),
        ("reaction", "messaging_reactions", True),
        ("postback", "messaging_postbacks", True),
        ("postback", "messages", False),
        ("seen", "messaging_seen", True),
        ("comment", "comments", True),
        ("comment", "live_comments", False),
    ],
)
def test_which_field_carries_each_kind(kind: str, field: str, covered: bool) -> None:
    subscriptions = Subscriptions()
    assert not subscriptions.covers(IG_A, kind)
    subscriptions.subscribe(IG_A, [field])
    assert subscriptions.covers(IG_A, kind) is covered
    assert kind in KIND_FIELDS
