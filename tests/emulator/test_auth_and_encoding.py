"""Tokens, account resolution, API versions and the three body encodings."""

from __future__ import annotations

import json

import httpx
import pytest

from ig_outbound.emulator import EmulatorControl
from tests.emulator.conftest import IG_A, IG_B, TOKEN_A, TOKEN_B, USER_1, USER_B, error_of, post

TEXT = {"recipient": {"id": USER_1}, "message": {"text": "hi"}}


def _assert_invalid_token(response: httpx.Response, token: str | None) -> None:
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "OAuthException"
    assert error["code"] == 190
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert error["fbtrace_id"]
    if token:
        assert token not in response.text


def test_missing_token_is_190(graph: httpx.Client, control: EmulatorControl) -> None:
    _assert_invalid_token(post(graph, TEXT, token=None), None)
    seen = control.calls()
    assert seen["calls"] == []
    assert [(r["code"], r["ig_id"]) for r in seen["rejected"]] == [(190, None)]


@pytest.mark.parametrize("where", ["header", "query"])
def test_unknown_token_is_190_and_not_echoed(
    graph: httpx.Client, control: EmulatorControl, where: str
) -> None:
    token = "IGAAunknown-token-zzz"
    if where == "header":
        response = post(graph, TEXT, token=token)
    else:
        response = graph.post(f"/v23.0/{IG_A}/messages", params={"access_token": token}, json=TEXT)
    _assert_invalid_token(response, token)
    assert control.calls()["calls"] == []


def test_token_of_other_account_is_100_33(graph: httpx.Client, control: EmulatorControl) -> None:
    response = post(graph, {"recipient": {"id": USER_B}, "message": {"text": "x"}}, node=IG_B)
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["code"], error["error_subcode"]) == ("IGApiException", 100, 33)
    assert f"Object with ID '{IG_B}' does not exist" in error["message"]
    assert TOKEN_A not in response.text
    assert control.calls()["calls"] == []


def test_unknown_node_is_100_33(graph: httpx.Client) -> None:
    response = post(graph, TEXT, node="17841499999999999")
    assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (100, 33)


def test_me_resolves_the_account_from_the_token(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    body = {"recipient": {"id": USER_B}, "message": {"text": "from b"}}
    response = post(graph, body, token=TOKEN_B, node="me", version="v25.0")
    assert response.status_code == 200, response.text
    [call] = control.calls()["calls"]
    assert (call["ig_id"], call["path_form"], call["version"]) == (IG_B, "me", "v25.0")


def test_recipient_must_be_a_user_of_that_account(graph: httpx.Client) -> None:
    # USER_B exists for account B only.
    response = post(graph, {"recipient": {"id": USER_B}, "message": {"text": "x"}})
    assert error_of(response)["error_subcode"] == 2534014


def test_query_token(graph: httpx.Client, control: EmulatorControl) -> None:
    response = graph.post("/v22.0/me/messages", params={"access_token": TOKEN_A}, json=TEXT)
    assert response.status_code == 200, response.text
    [call] = control.calls()["calls"]
    assert call["body"] == TEXT


@pytest.mark.parametrize("path", ["/v23/me/messages", "/v23.1/me/messages", "/latest/me/messages"])
def test_bad_version_is_unknown_path(graph: httpx.Client, path: str) -> None:
    response = graph.post(path, json=TEXT, headers={"Authorization": f"Bearer {TOKEN_A}"})
    assert response.status_code == 400
    assert error_of(response)["code"] == 2500


def test_unknown_route_answers_like_graph(graph: httpx.Client) -> None:
    response = graph.get("/v23.0/me/conversations")
    assert response.status_code == 400
    assert error_of(response)["code"] == 2500


def test_form_with_json_string_values(graph: httpx.Client, control: EmulatorControl) -> None:
    # MIG-SEND's curl: --data 'recipient={"id":"…"}&message={"text":"…"}' (token in the body).
    form = {
        "recipient": json.dumps({"id": USER_1}),
        "message": json.dumps({"text": "form hello"}),
        "access_token": TOKEN_A,
    }
    response = graph.post(f"/v23.0/{IG_A}/messages", data=form)
    assert response.status_code == 200, response.text
    assert response.json()["message_id"].startswith("aWdf")
    [call] = control.calls()["calls"]
    assert call["body"] == {"recipient": {"id": USER_1}, "message": {"text": "form hello"}}
    assert TOKEN_A not in json.dumps(call)


def test_form_sender_action_with_json_payload(
    graph: httpx.Client, control: EmulatorControl
) -> None:
    form = {
        "recipient": json.dumps({"id": USER_1}),
        "sender_action": "react",
        "payload": json.dumps({"message_id": "aWdfabc", "reaction": "love"}),
    }
    response = graph.post(
        "/v23.0/me/messages", data=form, headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"recipient_id": USER_1}


def test_nested_form_params(graph: httpx.Client, control: EmulatorControl) -> None:
    # What HTTParty/Rails clients send for a nested hash.
    content = (
        f"recipient[id]={USER_1}"
        "&message[text]=Pick"
        "&message[quick_replies][][content_type]=text"
        "&message[quick_replies][][title]=Yes"
        "&message[quick_replies][][payload]=YES"
        "&message[quick_replies][][content_type]=text"
        "&message[quick_replies][][title]=No"
        "&message[quick_replies][][payload]=NO"
        f"&access_token={TOKEN_A}"
    )
    response = graph.post(
        "/v23.0/me/messages",
        content=content,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    [call] = control.calls()["calls"]
    assert call["body"]["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Yes", "payload": "YES"},
        {"content_type": "text", "title": "No", "payload": "NO"},
    ]


def test_nested_form_indexed_images(graph: httpx.Client, control: EmulatorControl) -> None:
    form = {
        "recipient[id]": USER_1,
        "message[attachments][0][type]": "image",
        "message[attachments][0][payload][url]": "https://e.com/1.png",
        "message[attachments][1][type]": "image",
        "message[attachments][1][payload][attachment_id]": "42",
    }
    response = graph.post(
        "/v23.0/me/messages", data=form, headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert response.status_code == 200, response.text
    [call] = control.calls()["calls"]
    assert call["message_kind"] == "images"


def test_form_with_malformed_json_value_is_100(graph: httpx.Client) -> None:
    form = {"recipient": '{"id": ', "message": json.dumps({"text": "x"})}
    response = graph.post(
        "/v23.0/me/messages", data=form, headers={"Authorization": f"Bearer {TOKEN_A}"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == 100


def test_token_check_comes_before_body_parsing(graph: httpx.Client) -> None:
    response = graph.post(
        "/v23.0/me/messages",
        content=b"{not json",
        headers={"Authorization": "Bearer nope", "Content-Type": "application/json"},
    )
    assert error_of(response)["code"] == 190
