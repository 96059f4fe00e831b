"""`X-Hub-Signature-256` over the raw body as Meta signs it [MSG-WH, IGL-WH]."""

from __future__ import annotations

import json

import pytest

from ig_outbound.producers.webhooks import (
    SIGNATURE_HEADER,
    WebhookError,
    parse_webhook,
    signature_header,
    verify_signature,
)
from tests.webhooks.payloads import (
    APP_SECRET,
    FIXTURE_NAMES,
    ROTATED_SECRET,
    load,
    meta_body,
    signed,
)


def _refusal(body: bytes, header: str | None, secret: str | list[str] = APP_SECRET) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        verify_signature(body, header, secret)
    return caught.value


def test_the_header_is_sha256_of_the_body_in_lowercase_hex() -> None:
    # GitHub's published HMAC-SHA256 test vector (same scheme): an independent check.
    header = signature_header(b"Hello, World!", "It's a Secret to Everybody")
    assert header == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert SIGNATURE_HEADER == "X-Hub-Signature-256"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_fixture_signed_with_the_app_secret_passes(name: str) -> None:
    body, header = signed(name)
    verify_signature(body, header, APP_SECRET)


def test_meta_signs_the_escaped_unicode_form() -> None:
    body = meta_body(load("message_unicode_text"))
    assert b"Gr\\u00fc\\u00dfe \\u00e4\\u00f6\\u00e5" in body
    assert body.isascii()


def test_a_secret_being_rotated_in_passes_next_to_the_old_one() -> None:
    body, old_header = signed("message_echo", APP_SECRET)
    _, new_header = signed("message_echo", ROTATED_SECRET)
    verify_signature(body, old_header, [APP_SECRET, ROTATED_SECRET])
    verify_signature(body, new_header, (APP_SECRET, ROTATED_SECRET))


def test_a_wrong_secret_is_a_bad_signature() -> None:
    body, header = signed("message_text_quick_reply", "someone-elses-secret")
    error = _refusal(body, header)
    assert (error.code, error.status) == ("bad_signature", 403)
    assert _refusal(body, header, [APP_SECRET, ROTATED_SECRET]).code == "bad_signature"


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused_with_401(header: str | None) -> None:
    body, _ = signed("seen")
    error = _refusal(body, header)
    assert (error.code, error.status) == ("missing_signature", 401)


@pytest.mark.parametrize(
    "header",
    [
        "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        "sha256=",
        "sha256=" + "g" * 64,
        "sha256=" + "a" * 63,
        "sha256=" + "a" * 65,
        "a" * 64,
        "sha256 = " + "a" * 64,
        "sha256=" + "é" * 64,
    ],
)
def test_a_malformed_header_is_refused_with_401(header: str) -> None:
    body, _ = signed("seen")
    error = _refusal(body, header)
    assert (error.code, error.status) == ("malformed_signature", 401)


def test_an_uppercase_copy_of_the_digest_still_passes() -> None:
    body, header = signed("seen")
    verify_signature(body, "SHA256=" + header.removeprefix("sha256=").upper(), APP_SECRET)
    verify_signature(body, f"  {header}\r\n", APP_SECRET)


@pytest.mark.parametrize("position", [0, 1, 57, -2, -1])
def test_a_body_changed_by_one_byte_is_a_bad_signature(position: int) -> None:
    body, header = signed("message_text_quick_reply")
    changed = bytearray(body)
    changed[position] ^= 0x01
    assert _refusal(bytes(changed), header).code == "bad_signature"
    assert _refusal(body + b" ", header).code == "bad_signature"


def test_the_same_payload_re_encoded_as_raw_utf8_is_a_bad_signature() -> None:
    """The bytes matter, not the content: a handler must verify what it received."""
    payload = load("message_unicode_text")
    body, header = signed("message_unicode_text")
    reencoded = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert reencoded != body
    assert parse_webhook(reencoded) == parse_webhook(body)
    assert _refusal(reencoded, header).code == "bad_signature"


@pytest.mark.parametrize("secret", ["", [], ["ok", ""]])
def test_no_usable_secret_is_a_configuration_error(secret: str | list[str]) -> None:
    with pytest.raises(ValueError, match="app_secret"):
        verify_signature(b"{}", "sha256=" + "a" * 64, secret)
