"""The demo itself, small: every promise it checks held (exit 0), and it showed what issue 10
asks it to show: media refused with the limit named (too large, wrong type, an inward
address) and the disclosure at each of its three triggers, never for HUMAN_AGENT."""

from __future__ import annotations

import re

import pytest

from ig_outbound.harness.demo import run_demo

pytestmark = pytest.mark.slow


def test_a_small_demo_keeps_every_promise_and_shows_the_policies(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's own Redis, not one a developer's environment names.
    monkeypatch.delenv("IG_OUTBOUND_REDIS_URL", raising=False)
    code = run_demo(accounts=1, conversations=2, workers=1, events=80, loop_accounts=2, old_users=2)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PROBLEM" not in out
    assert re.search(r"-> rejected: media_too_large: 9\.1 MB > 8 MB for image", out)
    assert "-> rejected: media_wrong_type: application/pdf for audio" in out
    assert "-> rejected: media_forbidden_address: 169.254.169.254 (cloud metadata)" in out
    assert "-> rejected: media_forbidden_address: 10.20.30.40 (private)" in out
    assert "(0 refused URLs reached Graph)" in out
    triggers = re.findall(r"-> (disclosed first \((\w+)\)|no disclosure); message sent", out)
    assert [t[1] or "none" for t in triggers] == [
        "conversation_start",
        "none",
        "human_handover",
        "none",  # HUMAN_AGENT
        "lapse",
    ]
    assert "3 of them the disclosure" in out
