"""Graph API error answers: the exception the pipeline raises and the JSON it becomes.

Shape per the fact sheet §2: ``{"error": {"message", "type", "code", "error_subcode"?,
"is_transient"?, "fbtrace_id"}}``. graph.instagram.com uses ``type: "IGApiException"``
except for token errors, which keep Graph's ``OAuthException``.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.responses import Response

IG_EXCEPTION = "IGApiException"
OAUTH_EXCEPTION = "OAuthException"

# Codes Graph uses for throttling; answers with these carry X-Business-Use-Case-Usage.
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80002})

_TRACE_ALPHABET = string.ascii_letters + string.digits + "-_"


def new_fbtrace_id() -> str:
    """A random id shaped like Graph's (e.g. ``A9C5BFZGYCvRghcFEHTjgpC``)."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(22))


def buc_usage_header(
    ig_id: str,
    *,
    percent: int = 100,
    regain_minutes: int = 1,
    total_cputime: int = 10,
    total_time: int = 10,
) -> str:
    """``X-Business-Use-Case-Usage`` as graph.instagram.com sends it: keyed by the IG_ID."""
    entry = {
        "type": "instagram",
        "call_count": percent,
        "total_cputime": total_cputime,
        "total_time": total_time,
        "estimated_time_to_regain_access": regain_minutes,
    }
    return json.dumps({ig_id: [entry]}, separators=(",", ":"))


class GraphError(Exception):
    """A Graph error answer. Raised anywhere in the send pipeline, rendered once."""

    def __init__(
        self,
        *,
        status: int,
        code: int,
        message: str,
        subcode: int | None = None,
        error_type: str = IG_EXCEPTION,
        is_transient: bool | None = None,
        headers: Mapping[str, str] | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type
        self.is_transient = is_transient
        self.headers: dict[str, str] = dict(headers or {})
        # Localized texts for the user, which some errors carry (fact sheet §2).
        self.user_title = user_title
        self.user_msg = user_msg

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        if self.user_title is not None:
            error["error_user_title"] = self.user_title
        if self.user_msg is not None:
            error["error_user_msg"] = self.user_msg
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}

    def to_response(self, extra_headers: Mapping[str, str] | None = None) -> Response:
        trace = new_fbtrace_id()
        headers = {**(extra_headers or {}), **self.headers, "x-fb-trace-id": trace}
        return Response(
            json.dumps(self.body(trace), ensure_ascii=False),
            status_code=self.status,
            headers=headers,
            media_type="application/json; charset=UTF-8",
        )


# --- constructors for the answers the emulator gives ---------------------------------


def invalid_token() -> GraphError:
    # Never include the token: Graph does not echo it and we must not leak it.
    return GraphError(
        status=400,
        code=190,
        message="Invalid OAuth access token - Cannot parse access token",
        error_type=OAUTH_EXCEPTION,
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(
        status=400,
        code=2500,
        message=f"Unknown path components: {path}",
        error_type=OAUTH_EXCEPTION,
    )


def unsupported_post(object_id: str) -> GraphError:
    return unsupported_request("post", object_id)


def unsupported_request(method: str, object_id: str) -> GraphError:
    """Graph's 100/33 for a node the token may not use (``method``: get, post, delete)."""
    return GraphError(
        status=400,
        code=100,
        subcode=33,
        message=(
            f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot "
            "be loaded due to missing permissions, or does not support this operation"
        ),
    )


# --- tokens that no longer work (tokens.py) --------------------------------------------------


def _pacific() -> tzinfo:
    # Graph states token times in Menlo Park's time ("... 06:00:00 PST"); UTC if the host
    # has no time zone data.
    try:
        return ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:
        return UTC


def graph_time(epoch_s: float) -> str:
    """A moment as Graph's token errors write it: ``Tuesday, 01-Dec-25 06:00:00 PST``."""
    return datetime.fromtimestamp(epoch_s, _pacific()).strftime("%A, %d-%b-%y %H:%M:%S %Z")


def token_expired(expired_at: float, now: float) -> GraphError:
    """190/463, word for word as observed (chatwoot/chatwoot#12989, huydx/facy#15)."""
    return GraphError(
        status=400,
        code=190,
        subcode=463,
        message=(
            f"Error validating access token: Session has expired on {graph_time(expired_at)}. "
            f"The current time is {graph_time(now)}."
        ),
        error_type=OAUTH_EXCEPTION,
    )


# Texts of the other token subcodes. 460's is observed (instafeed.js#747,
# flutter_facebook_login#151); 458's and 467's are the long-known Facebook texts; 459's, 464's
# and 492's are UNCONFIRMED paraphrases of Graph's error reference.
_TOKEN_TEXTS: dict[int, str] = {
    458: "The user has not authorized application {app_id}.",
    459: "You cannot access the app till you log in to www.facebook.com and follow the "
    "instructions given.",
    460: "The session has been invalidated because the user changed their password or "
    "Facebook has changed the session for security reasons.",
    464: "Sessions for the user are not allowed because the user is not a confirmed user.",
    467: "The session is invalid because the user logged out.",
    492: "The session is invalid.",
}


def token_invalidated(subcode: int, app_id: str) -> GraphError:
    """190 with the subcode a revoked token answers (see ``tokens.REVOKE_SUBCODES``)."""
    text = _TOKEN_TEXTS.get(subcode, "The session is invalid.").format(app_id=app_id)
    return GraphError(
        status=400,
        code=190,
        subcode=subcode,
        message=f"Error validating access token: {text}",
        error_type=OAUTH_EXCEPTION,
    )


def token_superseded() -> GraphError:
    # UNCONFIRMED: Meta's pages do not say that refreshing invalidates the old token, nor how
    # such a token would answer; 467 is Graph's subcode for an otherwise invalid token.
    return GraphError(
        status=400,
        code=190,
        subcode=467,
        message="Error validating access token: The session has been invalidated because a "
        "newer access token was issued.",
        error_type=OAUTH_EXCEPTION,
    )


def refresh_too_early(min_age_s: float) -> GraphError:
    # UNCONFIRMED: Meta documents the rule (refresh only a token >= 24 h old) but not its
    # error; no observed answer was found. Code 100 (invalid parameter) as OAuthException.
    hours = min_age_s / 3600.0
    return GraphError(
        status=400,
        code=100,
        message=(
            f"(#100) The access token cannot be refreshed yet: a long-lived token can be "
            f"refreshed once it is at least {hours:g} hours old"
        ),
        error_type=OAUTH_EXCEPTION,
    )


def bad_grant_type(missing: bool) -> GraphError:
    # The value is not echoed: a client mixing up its params could have put a token there.
    text = (
        "The parameter grant_type is required"
        if missing
        else ("Param grant_type must be ig_refresh_token")
    )
    return GraphError(status=400, code=100, message=f"(#100) {text}", error_type=OAUTH_EXCEPTION)


# --- reads and subscriptions (graph_accounts.py) -------------------------------------------


def nonexisting_field(name: str, node_type: str = "User") -> GraphError:
    """Graph's answer to ``?fields=`` naming a field the node does not have."""
    return GraphError(
        status=400,
        code=100,
        message=f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})",
    )


def missing_parameter(name: str) -> GraphError:
    return GraphError(status=400, code=100, message=f"(#100) The parameter {name} is required")


def param_not_one_of(param: str, allowed: Iterable[str], got: str) -> GraphError:
    """Graph's wording for an enum param out of range, e.g. ``subscribed_fields[1]``."""
    choices = ", ".join(allowed)
    return GraphError(
        status=400,
        code=100,
        message=f'(#100) Param {param} must be one of {{{choices}}} - got "{got}"',
    )


def invalid_parameter(detail: str) -> GraphError:
    """Structural problems with top-level params: code 100, no subcode."""
    return GraphError(status=400, code=100, message=f"(#100) {detail}")


def invalid_message_data(detail: str) -> GraphError:
    """Content of ``message`` (or action payload) invalid for its type: 100 / 2534015."""
    return GraphError(status=400, code=100, subcode=2534015, message=f"(#100) {detail}")


def no_matching_user() -> GraphError:
    return GraphError(status=400, code=100, subcode=2534014, message="No matching Instagram user")


def comment_invalid() -> GraphError:
    return GraphError(
        status=400,
        code=100,
        subcode=2534025,
        message="(#100) The comment is invalid for a private reply",
    )


def outside_window() -> GraphError:
    """The messaging window is closed (observed on graph.instagram.com, fact sheet §2)."""
    return GraphError(
        status=403,
        code=10,
        subcode=2534022,
        message="This message is sent outside of allowed window.",
    )


def private_reply_window_closed() -> GraphError:
    # UNCONFIRMED which code Graph uses for a comment older than 7 days. The closest fact
    # (sheet §2/§4) is the window error 10 / 2534022, observed with HTTP 403.
    return outside_window()


def private_reply_already_sent() -> GraphError:
    # UNCONFIRMED (fact sheet §10.10): the code for a second private reply to one comment is
    # not documented for IG. Messenger's Page private replies answer "(#10900) Activity
    # already replied to"; we answer that, so a sender can tell it apart from code 10
    # (permission denied, an account problem).
    return GraphError(
        status=400,
        code=10900,
        message="(#10900) Activity already replied to",
    )


def throttled(ig_id: str) -> GraphError:
    return GraphError(
        status=400,
        code=613,
        subcode=2534040,
        message="Calls to this api have exceeded the rate limit.",
        headers={"X-Business-Use-Case-Usage": buc_usage_header(ig_id)},
    )


def rate_limited(answer: str) -> GraphError:
    """The answer to a call over Meta's per-account limit; ``answer`` is "613", "4" or "80002".

    The caller adds ``X-Business-Use-Case-Usage``. Which code graph.instagram.com really sends
    is UNCONFIRMED (fact sheet §10.2); all three are answered with HTTP 400.
    """
    if answer == "4":
        return GraphError(status=400, code=4, message="Application request limit reached")
    if answer == "80002":
        # Graph's BUC throttling text for Instagram objects (observed on graph.facebook.com).
        return GraphError(
            status=400,
            code=80002,
            message=(
                "(#80002) There have been too many calls to this Instagram account. "
                "Wait a bit and try again. For more info, please refer to "
                "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
            ),
        )
    return GraphError(
        status=400,
        code=613,
        subcode=2534040,
        message="Calls to this api have exceeded the rate limit.",
    )


# --- media Graph fetched (media_checks.py); the fact sheet §4 names the codes, the texts are
# Messenger's error reference where the Instagram pages give none (UNCONFIRMED wording).


def media_fetch_failed() -> GraphError:
    return GraphError(
        status=400,
        code=100,
        subcode=2018008,
        message=(
            "(#100) Failed to fetch the file from the url. Please check that the url is valid, "
            "with a valid SSL certificate, valid file size, and that the server is responding "
            "fast enough."
        ),
    )


def media_type_mismatch() -> GraphError:
    """The attachment's declared type is not the file's (fact sheet §4, 2018047)."""
    return GraphError(
        status=400,
        code=100,
        subcode=2018047,
        message=(
            "(#100) Upload attachment failure. The attachment type does not match the file "
            "type of the provided url."
        ),
    )


def attachment_too_large() -> GraphError:
    return GraphError(
        status=400,
        code=100,
        subcode=2018109,
        message="(#100) Attachment size exceeds allowable limit",
    )


def image_too_large() -> GraphError:
    """The fact sheet's example (§2, from Instagram's error reference), field for field; its
    ``type`` is the reference's OAuthException."""
    return GraphError(
        status=400,
        code=36000,
        subcode=2207004,
        message="The image size is too large.",
        error_type=OAUTH_EXCEPTION,
        is_transient=False,
        user_title="Image size too large",
        user_msg="The image is too large to download. It should be less than 8 MiB.",
    )


def unexpected(code: int = 2) -> GraphError:
    return GraphError(
        status=500,
        code=code,
        message="An unexpected error has occurred. Please retry your request later.",
        is_transient=True,
    )


_DEFAULT_MESSAGES: dict[int, str] = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "(#200) Permissions error",
    551: "This person isn't available right now.",
    613: "Calls to this api have exceeded the rate limit.",
}
_SUBCODE_MESSAGES: dict[int, str] = {
    2534014: "No matching Instagram user",
    2534015: "(#100) Invalid message data",
    2534022: "This message is sent outside of allowed window.",
    2534025: "(#100) The comment is invalid for a private reply",
    2018008: media_fetch_failed().message,
    2018047: media_type_mismatch().message,
    2018109: attachment_too_large().message,
    2207004: image_too_large().message,
}


def scripted(
    *,
    status: int,
    code: int,
    subcode: int | None,
    message: str | None,
    error_type: str | None,
    is_transient: bool | None,
    ig_id: str,
) -> GraphError:
    """An error from the scripted queue, filled with Graph-like defaults."""
    text = (
        message
        or (_SUBCODE_MESSAGES.get(subcode, "") if subcode is not None else "")
        or _DEFAULT_MESSAGES.get(code, f"(#{code}) Scripted error")
    )
    if error_type is None:
        error_type = OAUTH_EXCEPTION if code == 190 else IG_EXCEPTION
    if is_transient is None and code in (1, 2):
        is_transient = True
    headers = (
        {"X-Business-Use-Case-Usage": buc_usage_header(ig_id)} if code in THROTTLE_CODES else {}
    )
    return GraphError(
        status=status,
        code=code,
        subcode=subcode,
        message=text,
        error_type=error_type,
        is_transient=is_transient,
        headers=headers,
    )
