"""The send pipeline behind ``POST /v{N}.0/{IG_ID|me}/messages``.

One ordered list of synchronous checks (each may raise ``GraphError``), then delivery, then
the answer. Later features slot in as further checks without touching the others. Checks and
delivery run under the state lock with no ``await`` in between, so check-then-deliver (one
private reply per comment, the per-account rate limits) is atomic.

The messaging window (``messaging_window``, last): a send to a user who has not written to the
account within 24 h (7 days for HUMAN_AGENT messages) is refused with 403 10/2534022, after
authentication, validation, rate limits and the recipient's existence are settled. Ages are
measured on the emulator's clock (``state.clock``), which tests move forward.

Delivery of a message also queues its echo webhook (``inbound.business_message``).

Media (``media_fetch``, last): an attachment URL on the emulator's own media host is judged as
Graph's download would find the file (``media_checks.py``): missing -> 100/2018008, over the
limit -> 36000/2207004 (images) or 100/2018109, the wrong format -> 100/2018047. Other URLs
pass: the emulator cannot fetch the internet.

Authentication (``authenticate``) follows the token's life on the emulator's clock
(``auth.py``): unknown 190, expired 190/463, revoked 190/<its subcode>, superseded 190/467.

Rate limits (``rate_limit``, after body validation): a call over its account's budget gets the
configured throttle error and is not delivered. While limits are enabled every answer whose
account is known carries ``X-Business-Use-Case-Usage`` (``usage_header``, run last, so a
success counts its own call).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from ig_outbound.emulator import auth, inbound
from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.body import JsonDict, parse_body, parse_form
from ig_outbound.emulator.config import PRIVATE_REPLY_WINDOW_S
from ig_outbound.emulator.credentials import request_token, without_credentials
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.media_checks import attachment_urls, graph_refusal
from ig_outbound.emulator.rate_limits import RateClass, rate_class_of
from ig_outbound.emulator.state import Account, EmulatorState, RecordedCall
from ig_outbound.emulator.validate import ValidatedSend, validate_send

VERSION_RE = re.compile(r"^v[0-9]+\.0$")


@dataclass(frozen=True)
class AfterSend:
    """How to answer a call that was delivered: an error (ambiguous send) and/or a hang."""

    fault: str
    error: GraphError | None = None
    hang_s: float = 0.0


@dataclass
class SendContext:
    arrived_at: float
    version: str
    node: str  # "me" or the IG_ID in the path
    path: str
    body: JsonDict | None
    body_error: GraphError | None
    token: str | None = field(default=None, repr=False)  # secret
    account: Account | None = None
    send: ValidatedSend | None = None
    recipient_id: str | None = None
    after_send: AfterSend | None = None
    hang_s: float = 0.0  # delay before a pre-send error answer (scripted)
    fault: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_class: RateClass | None = None  # set by rate_limit
    throttled: bool = False  # refused by rate_limit

    @property
    def path_form(self) -> Literal["id", "me"]:
        return "me" if self.node == "me" else "id"

    @property
    def ig_id(self) -> str:
        assert self.account is not None, "authenticate must run first"
        return self.account.ig_id


Check = Callable[[SendContext, EmulatorState], None]


async def read_context(request: Request) -> SendContext:
    arrived_at = time.time()  # taken before reading the body: the arrival time
    raw = await request.body()
    body: JsonDict | None = None
    body_error: GraphError | None = None
    try:
        # Graph reads params from the query string and the body alike; the body wins.
        query = parse_form(request.url.query) if request.url.query else {}
        body = {**query, **parse_body(raw, request.headers.get("content-type", ""))}
    except GraphError as error:
        body_error = error
    return SendContext(
        arrived_at=arrived_at,
        version=request.path_params["version"],
        node=request.path_params["node"],
        path=request.url.path,
        body=without_credentials(body) if body is not None else None,
        body_error=body_error,
        token=request_token(request, body),
    )


# --- checks, in order ----------------------------------------------------------------------


def check_version(ctx: SendContext, state: EmulatorState) -> None:
    if not VERSION_RE.match(ctx.version):
        raise ge.unknown_path(ctx.path)


def authenticate(ctx: SendContext, state: EmulatorState) -> None:
    ctx.account = auth.authenticate(state, ctx.token, state.clock.at(ctx.arrived_at))


def resolve_node(ctx: SendContext, state: EmulatorState) -> None:
    # A token only works on its own account's node; any other id is Graph's 100/33.
    if ctx.node != "me" and ctx.node != ctx.ig_id:
        raise ge.unsupported_post(ctx.node)


def scripted_answer(ctx: SendContext, state: EmulatorState) -> None:
    answer = state.take_scripted(ctx.ig_id)
    if answer is None:
        return
    state.count_fault("scripted")
    error = None
    if answer.code is not None:
        error = ge.scripted(
            status=answer.status,
            code=answer.code,
            subcode=answer.subcode,
            message=answer.message,
            error_type=answer.error_type,
            is_transient=answer.is_transient,
            ig_id=ctx.ig_id,
        )
    if error is not None and not answer.after_send:
        ctx.fault, ctx.hang_s = "scripted", answer.hang_s or 0.0
        raise error
    ctx.after_send = AfterSend("scripted", error, answer.hang_s or 0.0)


def injected_faults(ctx: SendContext, state: EmulatorState) -> None:
    if ctx.after_send is not None:
        return  # a scripted answer already decided this call
    kind = state.roll_fault()
    if kind is None:
        return
    state.count_fault(kind)
    ctx.fault = kind
    if kind == "throttle":
        raise ge.throttled(ctx.ig_id)
    if kind == "error_5xx":
        raise ge.unexpected(state.faults.error_5xx_code)
    if kind == "error_5xx_after_send":
        ctx.after_send = AfterSend(kind, ge.unexpected(state.faults.error_5xx_code))
    else:
        # A timeout is modelled as "processed, then the answer never comes in time": the
        # call IS recorded as delivered, which is what makes timeouts ambiguous for clients.
        ctx.after_send = AfterSend(kind, None, state.faults.timeout_hang_s)


def require_body(ctx: SendContext, state: EmulatorState) -> None:
    if ctx.body_error is not None:
        raise ctx.body_error


def validate_body(ctx: SendContext, state: EmulatorState) -> None:
    assert ctx.body is not None
    ctx.send = validate_send(ctx.body)


def resolve_recipient(ctx: SendContext, state: EmulatorState) -> None:
    assert ctx.send is not None
    if ctx.send.comment_id is None:
        assert ctx.send.recipient_id is not None
        if not state.user_exists(ctx.ig_id, ctx.send.recipient_id):
            raise ge.no_matching_user()
        ctx.recipient_id = ctx.send.recipient_id
        return
    comment = state.comment(ctx.send.comment_id)
    if comment is None or comment.ig_id != ctx.ig_id:
        raise ge.comment_invalid()
    if state.clock.at(ctx.arrived_at) - comment.created_at > PRIVATE_REPLY_WINDOW_S:
        raise ge.private_reply_window_closed()
    if comment.replied_at is not None:
        raise ge.private_reply_already_sent()
    ctx.recipient_id = comment.commenter_igsid  # Graph answers with the commenter's IGSID


def rate_limit(ctx: SendContext, state: EmulatorState) -> None:
    """Meta's per-account limits: 100/s light, 10/s audio/video, 750/h private replies.

    Runs after validation (a malformed body is a 400 invalid parameter, not a violation). The
    call is counted in its window only when delivered (``EmulatorState.record_call``).
    """
    assert ctx.send is not None
    limits = state.rate_limits
    if not limits.enabled:
        return
    ctx.rate_class = rate_class_of(ctx.send.comment_id, ctx.send.message_kind)
    if not limits.admit(ctx.ig_id, ctx.rate_class, ctx.arrived_at):
        ctx.throttled, ctx.fault = True, "rate_limit"
        raise ge.rate_limited(limits.config.throttle_answer)


def messaging_window(ctx: SendContext, state: EmulatorState) -> None:
    """Graph's window: the user must have written within 24 h (HUMAN_AGENT: 7 days).

    Sender actions and reactions follow the 24 h window too. Private replies are not in a
    conversation yet: ``resolve_recipient`` applies their rule (7 days after the comment, once).
    """
    send = ctx.send
    assert send is not None and ctx.recipient_id is not None
    window = state.window
    if send.comment_id is not None or not window.enforced:
        return
    human_agent = send.kind == "message" and send.tag == "HUMAN_AGENT"
    span = window.human_agent_s if human_agent else window.standard_s
    opened_at = state.window_opened_at(ctx.ig_id, ctx.recipient_id)
    if opened_at is None or state.clock.at(ctx.arrived_at) - opened_at > span:
        raise ge.outside_window()


def media_fetch(ctx: SendContext, state: EmulatorState) -> None:
    """Graph downloads each attachment before delivering; the first it refuses answers.

    Last: Graph settles who may be messaged before it spends a download."""
    if state.media.base_url is None or ctx.body is None:
        return  # no media host: nothing the emulator could know about a file
    for attachment_type, url in attachment_urls(ctx.body):
        refusal = graph_refusal(attachment_type, url, state.media)
        if refusal is not None:
            raise refusal


DEFAULT_CHECKS: tuple[Check, ...] = (
    check_version,
    authenticate,
    resolve_node,
    scripted_answer,
    injected_faults,
    require_body,
    validate_body,
    rate_limit,
    resolve_recipient,
    messaging_window,
    media_fetch,
)


def usage_header(ctx: SendContext, state: EmulatorState) -> None:
    """``X-Business-Use-Case-Usage`` on every answer of a known account while limits are on.

    Not a check: the pipeline runs it after the checks and delivery, whatever they answered.
    Errors that carry their own header (the injected throttle fault, scripted throttle codes)
    keep theirs: ``GraphError.headers`` win over ``ctx.headers``.
    """
    limits = state.rate_limits
    if limits.enabled and ctx.account is not None:
        ctx.headers["X-Business-Use-Case-Usage"] = limits.usage_header(
            ctx.account.ig_id, ctx.arrived_at, throttled=ctx.throttled
        )


# --- delivery and answer ----------------------------------------------------------------------


def deliver(ctx: SendContext, state: EmulatorState) -> RecordedCall:
    send, body = ctx.send, ctx.body
    assert send is not None and body is not None and ctx.recipient_id is not None
    if send.comment_id is not None and not state.mark_replied(send.comment_id, ctx.arrived_at):
        raise ge.private_reply_already_sent()
    mid = state.next_message_id(ctx.ig_id) if send.kind == "message" else None
    after = ctx.after_send
    call = state.record_call(
        arrived_at=ctx.arrived_at,
        finished_at=time.time(),
        ig_id=ctx.ig_id,
        version=ctx.version,
        path_form=ctx.path_form,
        kind=send.kind,
        message_kind=send.message_kind,
        sender_action=send.sender_action,
        recipient_id=ctx.recipient_id,
        comment_id=send.comment_id,
        body=body,
        response_status=after.error.status if after and after.error else 200,
        message_id=mid,
        fault=after.fault if after else None,
        truncations=[asdict(t) for t in send.truncations],
    )
    if call.message_id is not None:
        inbound.business_message(state, call)
    return call


def success_response(call: RecordedCall, headers: dict[str, str]) -> Response:
    payload: dict[str, Any] = {"recipient_id": call.recipient_id}
    if call.message_id is not None:
        payload["message_id"] = call.message_id
    return Response(
        json.dumps(payload),
        status_code=200,
        headers=headers,
        media_type="application/json; charset=UTF-8",
    )


class SendPipeline:
    """Runs the checks for one request and answers it."""

    def __init__(self, state: EmulatorState, checks: Sequence[Check] = DEFAULT_CHECKS) -> None:
        self.state = state
        self.checks = list(checks)

    async def handle(self, request: Request) -> Response:
        transit = self.state.transit_s()
        if transit > 0:
            # The request "arrives" only now: its arrival time (and rate window) moves too.
            self.state.count_fault("transit")
            await asyncio.sleep(transit)
        ctx = await read_context(request)
        latency = self.state.latency_s()
        if latency > 0:
            self.state.count_fault("latency")
            await asyncio.sleep(latency)
        try:
            with self.state.lock:
                try:
                    for check in self.checks:
                        check(ctx, self.state)
                    call = deliver(ctx, self.state)
                finally:
                    usage_header(ctx, self.state)
        except GraphError as error:
            self._record_rejected(ctx, error)
            if ctx.hang_s:
                await asyncio.sleep(ctx.hang_s)
            return error.to_response(ctx.headers)
        after = ctx.after_send
        if after is not None and after.hang_s:
            await asyncio.sleep(after.hang_s)
        if after is not None and after.error is not None:
            return after.error.to_response(ctx.headers)
        return success_response(call, ctx.headers)

    def _record_rejected(self, ctx: SendContext, error: GraphError) -> None:
        self.state.record_rejected(
            at=ctx.arrived_at,
            status=error.status,
            code=error.code,
            subcode=error.subcode,
            ig_id=ctx.account.ig_id if ctx.account else None,
            version=ctx.version,
            fault=ctx.fault,
        )
