"""Every Lua script ig-outbound runs, loaded once from `producers/lua/*.lua`.

A script's text is the generated prelude, then the library files it names, then its body:

    prelude   key builders `key_<name>(prefix, ...)` from `keys.KEY_TEMPLATES`,
              limits (intent size and depth, key length, times) and the job name,
              the conversation's recipient prefixes (`id:`, `comment:`) from `intent.py`,
              `rate_class(kind, is_private_reply)` from `rate_class.py`,
              `now_ms()` (Redis TIME in ms)
    libraries `gcra.lua` (slot reservation), `rate_window.lua` (the limiter's window),
              `strict_json.lua` (what Python's json reads),
              `conversation.lua` (queue a conversation's next intent)
    body      `<name>.lua`

So the scripts and the Python can never disagree about a key name or a rate class; the
suite fails when a `.lua` file spells a key itself (tests/contract/test_lua_scripts.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType

from ig_outbound.producers.intent import (
    MAX_IDEMPOTENCY_KEY,
    MAX_INTENT_BYTES,
    MAX_INTENT_DEPTH,
    RECIPIENT_COMMENT_PREFIX,
    RECIPIENT_ID_PREFIX,
    Priority,
    Tag,
)
from ig_outbound.producers.keys import KEY_TEMPLATES, template_fields
from ig_outbound.producers.rate_class import MEDIA_KINDS, RateClass
from ig_outbound.producers.settings import MIN_RETENTION_S
from ig_outbound.producers.window import (
    FACTS_TTL_S,
    WINDOW_HUMAN_AGENT_S,
    WINDOW_MARGIN_S,
    WINDOW_PRIVATE_REPLY_S,
    WINDOW_STANDARD_S,
    WINDOW_UNKNOWN,
)
from ig_outbound.producers.wire import (
    ECHO_RETENTION_S,
    ECHOES_PER_CONVERSATION,
    JOB_TTL_MARGIN_MS,
    MAX_EPOCH_MS,
    MAX_TRANSIT_MS,
    SEND_JOB_NAME,
)

_LUA_DIR = files("ig_outbound.producers").joinpath("lua")


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key_builder(name: str, template: str) -> str:
    fields = template_fields(template)
    parts: list[str] = []
    rest = template
    for field in fields:
        before, _, rest = rest.partition("{" + field + "}")
        if before:
            parts.append(_lua_string(before))
        parts.append(field)
    if rest:
        parts.append(_lua_string(rest))
    args = ", ".join(fields)
    return f"local function key_{name}({args}) return {' .. '.join(parts)} end"


def _rate_class_rule() -> str:
    media = ", ".join(f"[{_lua_string(k)}] = true" for k in sorted(MEDIA_KINDS))
    return "\n".join(
        [
            f"local MEDIA_KINDS = {{{media}}}",
            "local function rate_class(kind, is_private_reply)",
            f"  if is_private_reply then return {_lua_string(RateClass.PRIVATE_REPLY)} end",
            f"  if MEDIA_KINDS[kind] then return {_lua_string(RateClass.MEDIA)} end",
            f"  return {_lua_string(RateClass.LIGHT)}",
            "end",
        ]
    )


_NOW_MS = """local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end"""


def _constants() -> list[str]:
    numbers = {
        "MAX_IDEMPOTENCY_KEY": MAX_IDEMPOTENCY_KEY,
        "MAX_INTENT_BYTES": MAX_INTENT_BYTES,
        "MAX_INTENT_DEPTH": MAX_INTENT_DEPTH,
        "MAX_EPOCH_MS": MAX_EPOCH_MS,
        "MAX_TRANSIT_MS": MAX_TRANSIT_MS,
        "MIN_RETENTION_MS": MIN_RETENTION_S * 1000,
        "JOB_TTL_MARGIN_MS": JOB_TTL_MARGIN_MS,
        "DEFAULT_WINDOW_STANDARD_MS": WINDOW_STANDARD_S * 1000,
        "DEFAULT_WINDOW_HUMAN_AGENT_MS": WINDOW_HUMAN_AGENT_S * 1000,
        "DEFAULT_WINDOW_PRIVATE_REPLY_MS": WINDOW_PRIVATE_REPLY_S * 1000,
        "DEFAULT_WINDOW_MARGIN_MS": WINDOW_MARGIN_S * 1000,
        "FACTS_TTL_MS": FACTS_TTL_S * 1000,
        "ECHO_RETENTION_MS": ECHO_RETENTION_S * 1000,
        "ECHOES_KEPT": ECHOES_PER_CONVERSATION,
    }
    lines = [f"local {name} = {value}" for name, value in numbers.items()]
    return [
        *lines,
        f"local SEND_JOB_NAME = {_lua_string(SEND_JOB_NAME)}",
        f"local DEFAULT_WINDOW_UNKNOWN = {_lua_string(WINDOW_UNKNOWN)}",
        f"local HUMAN_AGENT_TAG = {_lua_string(Tag.HUMAN_AGENT.value)}",
        f"local PRIORITY_INTERACTIVE = {_lua_string(Priority.INTERACTIVE.value)}",
        f"local PRIORITY_BULK = {_lua_string(Priority.BULK.value)}",
    ]


_KEY_MENTION = re.compile(r"\bkey_(\w+)\b")


def generate_prelude(code: str | None = None) -> str:
    """The Lua every script starts with (generated from the Python definitions); given the
    script's own code, only the key builders it names (Redis runs a script's whole text on
    every call: each builder is a closure made again each time)."""
    used = None if code is None else set(_KEY_MENTION.findall(code))
    builders = [
        _key_builder(name, t) for name, t in KEY_TEMPLATES.items() if used is None or name in used
    ]
    return "\n".join(
        [
            "-- generated by ig_outbound.producers.scripts: key names, limits, rate classes,",
            "-- time",
            *builders,
            *_constants(),
            f"local RECIPIENT_ID_PREFIX = {_lua_string(RECIPIENT_ID_PREFIX)}",
            f"local RECIPIENT_COMMENT_PREFIX = {_lua_string(RECIPIENT_COMMENT_PREFIX)}",
            _rate_class_rule(),
            _NOW_MS,
            "",
        ]
    )


PRELUDE = generate_prelude()  # with every key builder (what a script may call)


def lua_file(name: str) -> str:
    """The text of `producers/lua/<name>.lua`."""
    return _LUA_DIR.joinpath(f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class LuaScript:
    """One script: its name (the body's file) and its whole text."""

    name: str
    source: str


def _script(name: str, *libraries: str) -> LuaScript:
    code = "\n".join([*(lua_file(lib) for lib in libraries), lua_file(name)])
    return LuaScript(name, generate_prelude(code) + "\n" + code)


# The library files; every other .lua file is a script body.
LIBRARIES = frozenset(
    {
        "gcra",
        "rate_window",
        "strict_json",
        "conversation",
        "window",
        "preflight",
        "disclosure",
        "account_guard",
    }
)

SCRIPTS: MappingProxyType[str, LuaScript] = MappingProxyType(
    {
        s.name: s
        for s in (
            _script("enqueue", "gcra", "strict_json", "window"),
            _script("journal_begin", "window", "preflight", "gcra", "rate_window"),
            _script("disclosure_decide", "window", "preflight", "disclosure"),
            _script("disclosure_settle", "disclosure"),
            _script("journal_unconfirm"),
            _script("journal_release"),
            _script("journal_finish", "conversation", "disclosure"),
            _script("journal_count"),
            _script("dead_letter_unkeyed"),
            _script("dead_letter_replayed"),
            _script("rate_acquire", "gcra", "rate_window"),
            _script("account_pause"),
            _script("sweep", "conversation"),
            _script("echo_claim"),
            _script("inbound_event"),
            _script("account_put", "account_guard"),
            _script("account_remove", "account_guard"),
            _script("account_sync", "account_guard"),
            _script("account_reauth", "account_guard"),
            _script("account_refreshed", "account_guard"),
            _script("account_refresh_failed", "account_guard"),
            _script("account_note", "account_guard"),
            _script("account_rekey", "account_guard"),
            _script("lease_release"),
            _script("fleet"),
            _script("heartbeat"),
            _script("reclaim"),
            _script("arq_claim"),
        )
    }
)

ENQUEUE = SCRIPTS["enqueue"]
JOURNAL_BEGIN = SCRIPTS["journal_begin"]
JOURNAL_UNCONFIRM = SCRIPTS["journal_unconfirm"]
JOURNAL_RELEASE = SCRIPTS["journal_release"]
JOURNAL_FINISH = SCRIPTS["journal_finish"]
JOURNAL_COUNT = SCRIPTS["journal_count"]
DISCLOSURE_DECIDE = SCRIPTS["disclosure_decide"]
DISCLOSURE_SETTLE = SCRIPTS["disclosure_settle"]
DEAD_LETTER_UNKEYED = SCRIPTS["dead_letter_unkeyed"]
RATE_ACQUIRE = SCRIPTS["rate_acquire"]
ACCOUNT_PAUSE = SCRIPTS["account_pause"]
SWEEP = SCRIPTS["sweep"]
FLEET = SCRIPTS["fleet"]
HEARTBEAT = SCRIPTS["heartbeat"]
RECLAIM = SCRIPTS["reclaim"]
ARQ_CLAIM = SCRIPTS["arq_claim"]
ECHO_CLAIM = SCRIPTS["echo_claim"]
INBOUND_EVENT = SCRIPTS["inbound_event"]
ACCOUNT_PUT = SCRIPTS["account_put"]
ACCOUNT_REMOVE = SCRIPTS["account_remove"]
ACCOUNT_SYNC = SCRIPTS["account_sync"]
ACCOUNT_REAUTH = SCRIPTS["account_reauth"]
ACCOUNT_REFRESHED = SCRIPTS["account_refreshed"]
ACCOUNT_REFRESH_FAILED = SCRIPTS["account_refresh_failed"]
ACCOUNT_NOTE = SCRIPTS["account_note"]
ACCOUNT_REKEY = SCRIPTS["account_rekey"]
LEASE_RELEASE = SCRIPTS["lease_release"]
