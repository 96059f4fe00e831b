"""The classification table, row by row, against the fact sheet (§4), plus every fallback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ig_outbound.graph.errors import (
    ERROR_TABLE,
    THROTTLE_CODES,
    TRANSIENT_CAP,
    Classification,
    ErrorClass,
    GraphError,
    classify,
    classify_transport,
)

T, R, P, A = ErrorClass.TRANSIENT, ErrorClass.THROTTLED, ErrorClass.PERMANENT, ErrorClass.ACCOUNT

# Transcribed from the shared fact sheet (instagram-api.md) §4 independently of the code's table:
# (code, subcode, class, reason, max_transient_attempts, ambiguous).
SHEET_ROWS: list[tuple[int, int | None, ErrorClass, str, int | None, bool]] = [
    (1, None, T, "api_unknown", TRANSIENT_CAP, False),
    (1, 99, A, "unknown_missing_permissions", None, False),
    (1, 1357046, T, "invalid_json_reply", None, True),
    (2, None, T, "service_unavailable", TRANSIENT_CAP, False),
    (4, None, R, "app_rate_limited", None, False),
    (17, None, R, "user_rate_limited", None, False),
    (32, None, R, "pages_rate_limited", None, False),
    (613, None, R, "custom_rate_limited", None, False),
    (613, 2534040, R, "rate_limited", None, False),
    (613, 2018338, P, "tag_bothersome", None, False),
    (80001, None, R, "buc_pages_rate_limited", None, False),
    (80002, None, R, "buc_instagram_rate_limited", None, False),
    (80006, None, R, "buc_messenger_rate_limited", None, False),
    (10, None, A, "permission_denied", None, False),
    (10, 2534022, P, "outside_window", None, False),
    (10, 2018278, P, "outside_window_policy", None, False),
    (10, 2018065, P, "outside_window_news", None, False),
    (10, 2018108, P, "cannot_receive", None, False),
    (10, 1893063, A, "account_restricted", None, False),
    (10, 2534077, A, "account_link_unverified", None, False),
    (100, None, P, "invalid_parameter", None, False),
    (100, 33, P, "object_not_found", None, False),
    (100, 2018001, P, "no_matching_user", None, False),
    (100, 2534014, P, "no_matching_user", None, False),
    (100, 2534015, P, "invalid_message_data", None, False),
    (100, 2534025, P, "invalid_comment", None, False),
    (100, 2534029, A, "business_blocked", None, False),
    (100, 2534037, P, "not_thread_owner", None, False),
    (100, 2534013, A, "page_not_linked", None, False),
    (100, 2018008, T, "media_fetch_failed", 1, False),
    (100, 2018047, P, "attachment_type_mismatch", None, False),
    (100, 2018074, P, "invalid_attachment_id", None, False),
    (100, 2018109, P, "attachment_too_large", None, False),
    (100, 2018294, T, "video_fetch_timeout", 1, False),
    (190, None, A, "token_invalid", None, False),
    (190, 458, A, "app_not_installed", None, False),
    (190, 459, A, "user_must_log_in", None, False),
    (190, 460, A, "password_changed", None, False),
    (190, 463, A, "token_expired", None, False),
    (190, 464, A, "user_must_log_in", None, False),
    (190, 467, A, "token_invalid", None, False),
    (190, 492, A, "token_invalid_session", None, False),
    (200, None, A, "permission_error", None, False),
    (200, 1545041, P, "recipient_unavailable", None, False),
    (200, 2534041, A, "dm_access_disabled", None, False),
    (368, None, A, "policy_blocked", None, False),
    (551, None, P, "recipient_unavailable", None, False),
    (551, 1545041, P, "recipient_unavailable", None, False),
    (2022, None, A, "commerce_disabled", None, False),
    (2018300, None, P, "thread_owned_by_other_app", None, False),
    (9000001, None, P, "message_deleted", None, False),
    (10900, None, P, "already_replied", None, False),
    (36103, None, A, "account_not_eligible", None, False),
]


def graph_body(**error: Any) -> bytes:
    return json.dumps({"error": {"message": "m", "type": "IGApiException", **error}}).encode()


def parse(status: int, **error: Any) -> GraphError:
    return GraphError.from_response(status, graph_body(**error))


@pytest.mark.parametrize("status", [400, 403, 500])
@pytest.mark.parametrize(
    ("code", "subcode", "expected", "reason", "cap", "ambiguous"),
    SHEET_ROWS,
    ids=[f"{row[0]}/{row[1]}" for row in SHEET_ROWS],
)
def test_sheet_row(
    status: int,
    code: int,
    subcode: int | None,
    expected: ErrorClass,
    reason: str,
    cap: int | None,
    ambiguous: bool,
) -> None:
    # Rows win over the HTTP status and over `is_transient: false`.
    fields: dict[str, Any] = {"code": code, "is_transient": False, "fbtrace_id": "AbC"}
    if subcode is not None:
        fields["error_subcode"] = subcode
    err = parse(status, **fields)
    assert (err.code, err.subcode, err.http_status) == (code, subcode, status)
    # A 5xx "unknown error" / "service unavailable" may come after the send was processed.
    maybe = code in (1, 2) and expected is ErrorClass.TRANSIENT and status >= 500
    assert classify(err) == Classification(expected, reason, cap, ambiguous or maybe)


def test_table_holds_exactly_the_sheet_rows() -> None:
    assert set(ERROR_TABLE) == {(row[0], row[1]) for row in SHEET_ROWS}
    assert len(SHEET_ROWS) == len(ERROR_TABLE)


def test_every_throttle_code_has_a_catch_all_throttled_row() -> None:
    for code in THROTTLE_CODES:
        assert ERROR_TABLE[(code, None)].error_class is ErrorClass.THROTTLED


def test_throttled_only_for_rate_limit_codes() -> None:
    throttled = {key[0] for key, row in ERROR_TABLE.items() if row.error_class is R}
    assert throttled == THROTTLE_CODES


@pytest.mark.parametrize(
    ("code", "subcode", "expected", "reason"),
    [
        (613, 1996, R, "custom_rate_limited"),  # 613 with a subcode without its own row
        (613, 424242, R, "custom_rate_limited"),
        (613, 2018338, P, "tag_bothersome"),
        (4, 2207051, R, "app_rate_limited"),
        (80002, 1, R, "buc_instagram_rate_limited"),
        (190, 999, A, "token_invalid"),
        (100, 424242, P, "invalid_parameter"),
        (10, 424242, A, "permission_denied"),
        (551, 7, P, "recipient_unavailable"),
    ],
)
def test_unknown_subcode_falls_back_to_code_row(
    code: int, subcode: int, expected: ErrorClass, reason: str
) -> None:
    result = classify(parse(400, code=code, error_subcode=subcode))
    assert (result.error_class, result.reason) == (expected, reason)


def test_is_transient_true_classifies_unknown_code_as_transient() -> None:
    err = parse(400, code=424242, is_transient=True)
    assert err.is_transient is True
    assert classify(err) == Classification(T, "is_transient")


def test_table_row_wins_over_is_transient() -> None:
    # Lookup order: rows first. A permanent row stays permanent even if flagged transient.
    assert classify(parse(400, code=100, error_subcode=2534014, is_transient=True)).error_class is P


@pytest.mark.parametrize(
    ("status", "body", "expected", "reason", "ambiguous"),
    [
        (429, b"Too Many Requests", R, "http_429", False),
        (429, graph_body(code=424242), R, "http_429", False),
        (503, b"<html>Service Unavailable</html>", T, "http_5xx", False),
        (503, b"", T, "http_5xx", False),
        (500, b"Internal Server Error", T, "http_5xx", True),
        (502, b"<html>Bad Gateway</html>", T, "http_5xx", True),
        (504, None, T, "http_5xx", True),
        # A Graph-coded 5xx is Graph refusing, not a gateway losing track of the send.
        (500, graph_body(code=424242), T, "http_5xx", False),
        (400, graph_body(code=424242), P, "unclassified_4xx", False),
        (404, b"<html>Not Found</html>", P, "unclassified_4xx", False),
        (401, b"", P, "unclassified_4xx", False),
        (302, b"", T, "unexpected_status", False),
        (200, b"{}", T, "unexpected_status", False),
    ],
)
def test_http_status_fallbacks(
    status: int, body: bytes | None, expected: ErrorClass, reason: str, ambiguous: bool
) -> None:
    result = classify(GraphError.from_response(status, body))
    assert result == Classification(expected, reason, None, ambiguous)


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        "",
        b"\xff\xfe\x00garbage",
        b"<html><body>oops</body></html>",
        b"null",
        b"[1, 2, 3]",
        b'"error"',
        b'{"error": 5}',
        b'{"error": null}',
        b'{"error": [1]}',
        b'{"errors": {"code": 100}}',
        b'{"error": {"code": "abc", "error_subcode": true, "message": 7, "type": 1}}',
        b'{"error": {"code": 1e400}}',
        b"[" * 100_000,
        b'{"error": {"message": "' + b"x" * (2 << 20) + b'"}}',
        {"unexpected": "mapping"},
    ],
    ids=lambda body: repr(body)[:30],
)
def test_garbage_body_never_raises(body: bytes | str | dict[str, str] | None) -> None:
    err = GraphError.from_response(502, body)
    assert err.code is None
    assert err.subcode is None
    assert err.http_status == 502
    assert 0 < len(err.message) <= 500
    assert classify(err).error_class is T


def test_summary_never_quotes_the_body() -> None:
    err = GraphError.from_response(400, b"Authorization: Bearer IGAAsecret echoed by a proxy")
    assert "IGAAsecret" not in err.message
    assert err.message == "HTTP 400: non-JSON body (50 bytes)"
    assert classify(err) == Classification(P, "unclassified_4xx")


def test_full_error_object_is_parsed() -> None:
    body = {
        "error": {
            "message": "This message is sent outside of allowed window.",
            "type": "IGApiException",
            "code": 10,
            "error_subcode": 2534022,
            "is_transient": False,
            "error_user_title": "t",
            "fbtrace_id": "A9C5BFZGYCvRghcFEHTjgpC",
        }
    }
    err = GraphError.from_response(403, body)
    assert err == GraphError(
        code=10,
        subcode=2534022,
        message="This message is sent outside of allowed window.",
        type="IGApiException",
        is_transient=False,
        fbtrace_id="A9C5BFZGYCvRghcFEHTjgpC",
        http_status=403,
    )
    assert GraphError.from_response(403, json.dumps(body)) == err


def test_lenient_field_types() -> None:
    err = parse(400, code="190", error_subcode="463", is_transient="yes", message="x" * 5000)
    assert (err.code, err.subcode, err.is_transient) == (190, 463, None)
    assert len(err.message) == 500
    assert parse(400, code=True).code is None  # a bool is not a code
    oauth = GraphError.from_response(400, b'{"error": "invalid_request"}')
    assert (oauth.code, oauth.message) == (None, "invalid_request")


def test_effective_class_caps_transient_rows() -> None:
    once = ERROR_TABLE[(100, 2018294)]
    assert [once.effective_class(n) for n in (1, 2, 3)] == [T, P, P]
    capped = ERROR_TABLE[(2, None)]
    assert [capped.effective_class(n) for n in range(1, TRANSIENT_CAP + 2)] == [T] * 3 + [P]
    uncapped = ERROR_TABLE[(1, 1357046)]
    assert uncapped.effective_class(100) is T
    assert ERROR_TABLE[(4, None)].effective_class(100) is R
    assert ERROR_TABLE[(190, None)].effective_class(100) is A


# --- transport failures -------------------------------------------------------------------

TOKEN = "IGAAtransportSECRET123"
REQUEST = httpx.Request(
    "POST",
    "https://graph.instagram.com/v23.0/17841400000000001/messages",
    headers={"Authorization": f"Bearer {TOKEN}"},
)


@pytest.mark.parametrize(
    ("exc_type", "reason", "ambiguous"),
    [
        (httpx.ConnectError, "connect_error", False),
        (httpx.ConnectTimeout, "connect_timeout", False),
        (httpx.PoolTimeout, "pool_timeout", False),
        (httpx.ProxyError, "proxy_error", False),
        (httpx.UnsupportedProtocol, "unsupported_protocol", False),
        (httpx.LocalProtocolError, "local_protocol_error", False),
        (httpx.TooManyRedirects, "too_many_redirects", False),
        (httpx.ReadTimeout, "read_timeout", True),
        (httpx.WriteTimeout, "write_timeout", True),
        (httpx.ReadError, "read_error", True),
        (httpx.WriteError, "write_error", True),
        (httpx.RemoteProtocolError, "remote_protocol_error", True),
        (httpx.CloseError, "close_error", True),
        (httpx.DecodingError, "decoding_error", True),
        # Unknown kinds are assumed to have possibly reached Graph.
        (httpx.TimeoutException, "transport_error", True),
        (httpx.NetworkError, "transport_error", True),
        (httpx.TransportError, "transport_error", True),
    ],
)
def test_transport_failures(
    exc_type: type[httpx.RequestError], reason: str, ambiguous: bool
) -> None:
    failure = classify_transport(exc_type("boom", request=REQUEST))
    assert failure.error_class is ErrorClass.TRANSIENT
    assert (failure.reason, failure.ambiguous) == (reason, ambiguous)
    assert failure.exc_type == exc_type.__name__
    assert failure.detail == "boom"
    assert TOKEN not in repr(failure)


def _leaf_subclasses(cls: type[httpx.RequestError]) -> set[type[httpx.RequestError]]:
    subs = set(cls.__subclasses__())
    leaves = {sub for sub in subs if not sub.__subclasses__()}
    for sub in subs - leaves:
        leaves |= _leaf_subclasses(sub)
    return leaves


def test_every_concrete_request_error_has_its_own_row() -> None:
    for exc_type in _leaf_subclasses(httpx.RequestError):
        assert exc_type.__module__.startswith("httpx")
        failure = classify_transport(exc_type("x", request=REQUEST))
        assert failure.reason != "transport_error", exc_type


def test_status_error_is_ambiguous() -> None:
    response = httpx.Response(500, request=REQUEST)
    failure = classify_transport(httpx.HTTPStatusError("500", request=REQUEST, response=response))
    assert (failure.reason, failure.ambiguous) == ("transport_error", True)


def test_transport_detail_is_redacted_and_short() -> None:
    # h11 quotes an illegal header value, token included, in its exception text.
    exc = httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN}\\n' " + "x" * 500)
    failure = classify_transport(exc, redact=(TOKEN, ""))
    assert TOKEN not in failure.detail
    assert "[redacted]" in failure.detail
    assert len(failure.detail) == 200
