"""Simulated users: ``users/act`` gives the mix, deterministically under a seed; every event
is a well-formed, signed webhook and a fact in the emulator's world."""

from __future__ import annotations

import json
from typing import Any

from tests.emulator.conftest import IG_A, IG_B, TOKEN_B, USER_1, USER_2, USER_B
from tests.emulator.inprocess import SECRET, World, open_world, world_config
from tests.emulator.webhook_checks import assert_signed, assert_well_formed

MIX = {"message": 0.6, "comment": 0.15, "reaction": 0.1, "postback": 0.1, "seen": 0.05}
COUNT = 400
CONFIGURED = {USER_1, USER_2, USER_B}
TEMPLATE = {
    "attachment": {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "What next?",
            "buttons": [{"type": "postback", "title": "Track", "payload": "TRACK"}],
        },
    }
}
QUICK = {
    "text": "Pick one",
    "quick_replies": [
        {"content_type": "text", "title": "Yes", "payload": "Y"},
        {"content_type": "text", "title": "No", "payload": "N"},
    ],
}


async def business_writes_first(world: World) -> set[str]:
    """The accounts send each configured user a template and quick replies; their mids."""
    mids = set()
    for igsid, token in [(USER_1, None), (USER_2, None), (USER_B, TOKEN_B)]:
        for message in (TEMPLATE, QUICK):
            body = {"recipient": {"id": igsid}, "message": message}
            response = await (world.send(body, token) if token else world.send(body))
            assert response.status_code == 200, response.text
            mids.add(response.json()["message_id"])
    return mids


async def act(world: World, **body: Any) -> dict[str, Any]:
    result = await world.control("users/act", body)
    await world.settle()
    return result


def projection(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a seed decides (mids are counters of the whole run, so they are left out)."""
    return [
        (
            e["kind"],
            e["ig_id"],
            e["igsid"],
            e["text"],
            e["payload"],
            e["reaction"],
            e["comment_id"],
            e["image"],
            e["reply_to_mid"] is None,
        )
        for e in events
    ]


async def seeded_run(world: World, seed: int) -> list[dict[str, Any]]:
    await business_writes_first(world)
    events: list[dict[str, Any]] = (await act(world, count=COUNT, mix=MIX, seed=seed))["events"]
    return events


async def test_same_seed_same_events_across_apps_and_resets() -> None:
    async with open_world(world_config()) as first, open_world(world_config()) as second:
        one = projection(await seeded_run(first, seed=11))
        assert projection(await seeded_run(second, seed=11)) == one
        await first.control("reset", {})
        assert projection(await seeded_run(first, seed=11)) == one  # made-up users forgotten
        await second.control("reset", {})
        assert projection(await seeded_run(second, seed=12)) != one


async def test_users_act_gives_the_mix_and_well_formed_signed_webhooks() -> None:
    async with open_world(world_config()) as world:
        business_mids = await business_writes_first(world)
        result = await act(world, count=COUNT, mix=MIX, seed=5)
        events = result["events"]
        counts = result["counts"]
        assert sum(counts.values()) == COUNT
        for kind, share in MIX.items():
            assert abs(counts[kind] / COUNT - share) < 0.05, counts
        assert {e["ig_id"] for e in events} == {IG_A, IG_B}
        # Every webhook the receiver got is signed over its bytes and well-formed (§6).
        received = world.receiver.received[len(business_mids) :]
        assert len(received) == COUNT
        for request in received:
            assert_signed(SECRET, request.body, request.headers["x-hub-signature-256"])
            assert_well_formed(request.body)
        by_index = {h["index"]: json.loads(h["body"]) for h in world.webhooks()}
        for event in events:
            assert_event_is_a_fact(world, event, business_mids)
            assert_webhook_carries(by_index[event["webhook"]], event)


def assert_event_is_a_fact(world: World, event: dict[str, Any], business_mids: set[str]) -> None:
    state, kind = world.state, event["kind"]
    ig_id, igsid = event["ig_id"], event["igsid"]
    assert igsid in state.users_of(ig_id)  # new users became existing users of the account
    if kind in ("message", "postback"):
        opened = state.window_opened_at(ig_id, igsid)
        assert opened is not None and opened >= event["at"]
    elif kind == "comment":
        comment = state.comment(event["comment_id"])
        assert comment is not None and (comment.ig_id, comment.commenter_igsid) == (ig_id, igsid)
    else:  # reactions and reads refer to a message the business sent
        assert event["mid"] in business_mids
    if kind == "postback":
        assert (event["text"], event["payload"]) == ("Track", "TRACK")
    if kind == "message" and event["payload"] is not None:
        assert (event["text"], event["payload"]) in {("Yes", "Y"), ("No", "N")}
    if event["reply_to_mid"] is not None:
        assert event["reply_to_mid"] in business_mids


def assert_webhook_carries(payload: dict[str, Any], event: dict[str, Any]) -> None:
    [entry] = payload["entry"]
    assert entry["id"] == event["ig_id"]
    if event["kind"] == "comment":
        assert entry["value"]["id"] == event["comment_id"]
        assert entry["value"]["from"]["id"] == event["igsid"]
        return
    [item] = entry["messaging"]
    assert item["sender"]["id"] == event["igsid"]
    key = {"message": "message", "postback": "postback", "reaction": "reaction", "seen": "read"}
    assert item[key[event["kind"]]]["mid"] == event["mid"]


async def test_the_variety_a_dm_can_have() -> None:
    async with open_world(world_config()) as world:
        await business_writes_first(world)
        events = (await act(world, count=COUNT, mix={"message": 1}, seed=3))["events"]
        assert {e["kind"] for e in events} == {"message"}
        assert any(e["payload"] for e in events)  # quick reply answers
        assert any(e["reply_to_mid"] for e in events)
        assert any(e["image"] for e in events)
        assert {e["igsid"] for e in events} - CONFIGURED  # users created on the fly
        newcomer = next(e for e in events if e["igsid"] not in CONFIGURED and e["ig_id"] == IG_A)
        # A made-up user who wrote is in the window: the business can answer.
        body = {"recipient": {"id": newcomer["igsid"]}, "message": {"text": "welcome"}}
        assert (await world.send(body)).status_code == 200


async def test_nothing_to_react_to_means_the_user_writes() -> None:
    async with open_world(world_config()) as world:
        mix = {"reaction": 1, "seen": 1, "postback": 1}
        result = await act(world, count=20, mix=mix, seed=1)
        assert result["counts"] == {"message": 20}


async def test_act_on_some_accounts_and_validation() -> None:
    async with open_world(world_config()) as world:
        result = await act(world, count=10, accounts=[IG_B], seed=2)
        assert {e["ig_id"] for e in result["events"]} == {IG_B}
        for bad in (
            {"accounts": ["17841499999999999"]},
            {"mix": {"dance": 1}},
            {"mix": {"message": 0}},
        ):
            response = await world.client.post("/_emulator/users/act", json=bad)
            assert response.status_code == 400, bad
        too_many = await world.client.post("/_emulator/users/act", json={"count": 10**6})
        assert too_many.status_code == 422


async def test_users_act_at_a_steady_rate_on_their_own() -> None:
    async with open_world(world_config()) as world:
        settings = await world.client.put("/_emulator/users/settings", json={"rate_per_s": 500})
        assert settings.json()["rate_per_s"] == 500
        await world.receiver.wait_for(10)
        await world.client.put("/_emulator/users/settings", json={"rate_per_s": 0})
        await world.settle()
        for request in world.receiver.received:
            assert_well_formed(request.body)
        assert world.state.stats()["webhooks"]["delivered"] >= 10
