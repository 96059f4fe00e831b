"""One owner for every Redis key and every Lua script: the scripts get key names, the
rate-class rule and Redis time from the generated prelude, never spell them themselves."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any

import pytest
import redis.asyncio as aioredis

from ig_outbound.producers.intent import ALL_KINDS
from ig_outbound.producers.keys import KEY_TEMPLATES, Keys, template_fields, template_literals
from ig_outbound.producers.rate_class import rate_class
from ig_outbound.producers.redis_util import resolve
from ig_outbound.producers.scripts import LIBRARIES, PRELUDE, SCRIPTS, lua_file

LUA_DIR = files("ig_outbound.producers").joinpath("lua")
LUA_NAMES = sorted(
    p.name.removesuffix(".lua") for p in LUA_DIR.iterdir() if p.name.endswith(".lua")
)


def _code(name: str) -> str:
    """A .lua file without its comments (comments may name keys to explain them)."""
    return "\n".join(line.split("--", 1)[0] for line in lua_file(name).splitlines())


def test_every_lua_file_is_a_library_or_a_loaded_script() -> None:
    assert set(LUA_NAMES) == set(SCRIPTS) | LIBRARIES


def _spelled_key_names(code: str) -> list[str]:
    """Fixed parts of our key names (`:conv:`, `arq:job:`, ...) that appear in Lua code."""
    return [
        literal
        for template in KEY_TEMPLATES.values()
        for literal in template_literals(template)
        if re.search(r"[a-z]", literal) and literal in code
    ]


@pytest.mark.parametrize("name", LUA_NAMES)
def test_no_script_spells_a_key_name_itself(name: str) -> None:
    assert _spelled_key_names(_code(name)) == [], f"{name}.lua: use the prelude's key_*()"


def test_a_key_name_spelled_in_lua_is_found() -> None:
    """The check above can fail: a script building `<prefix>:conv:...` by hand is caught."""
    assert _spelled_key_names("local c = prefix .. ':conv:' .. account") == [":conv:"]
    assert _spelled_key_names("local j = 'arq:job:' .. id") == ["arq:job:"]


@pytest.mark.parametrize("name", LUA_NAMES)
def test_no_script_decides_rate_classes_or_reads_the_clock_itself(name: str) -> None:
    code = _code(name)
    assert "'TIME'" not in code and '"TIME"' not in code, "use now_ms() from the prelude"
    for literal in ("'audio'", "'video'", "'id:'", "'comment:'", "'private_reply'", "'media'"):
        assert literal not in code, f"{name}.lua spells {literal}: the prelude owns it"


async def _eval(r: aioredis.Redis, body: str, *args: Any) -> Any:
    return await resolve(r.eval(PRELUDE + body, 0, *args))


async def test_lua_key_builders_equal_the_python_key_names(aredis: aioredis.Redis) -> None:
    keys = Keys("igo-x")
    for name, template in KEY_TEMPLATES.items():
        fields = template_fields(template)[1:]
        sample = {f: f"<{f}>" for f in fields}
        args = ", ".join(f"ARGV[{i + 2}]" for i in range(len(fields)))
        lua = await _eval(
            aredis, f"return key_{name}(ARGV[1]{', ' if args else ''}{args})", "igo-x",
            *sample.values(),
        )  # fmt: skip
        python = keys._key(name, **sample)
        assert lua.decode() == python, name


async def test_lua_rate_class_agrees_with_python_for_every_kind_and_recipient(
    aredis: aioredis.Redis,
) -> None:
    for kind in sorted(ALL_KINDS):
        for private in (False, True):
            lua = await _eval(
                aredis, "return rate_class(ARGV[1], ARGV[2] == '1')", kind, "1" if private else "0"
            )
            assert lua.decode() == rate_class(kind, private).value, (kind, private)


async def test_now_ms_is_redis_time_in_milliseconds(aredis: aioredis.Redis) -> None:
    seconds, micros = await aredis.time()
    lua = int(await _eval(aredis, "return now_ms()"))
    assert abs(lua - (seconds * 1000 + micros // 1000)) < 1000


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_defines_every_key_builder_it_names(name: str) -> None:
    """A script's prelude holds only the builders it names (scripts.py): none is missing."""
    source = SCRIPTS[name].source
    defined = set(re.findall(r"local function (key_\w+)\(", source))
    named = set(re.findall(r"\bkey_\w+\b", source)) & {f"key_{k}" for k in KEY_TEMPLATES}
    assert named <= defined, f"{name}.lua names {sorted(named - defined)} without a builder"
    assert len(defined) < len(KEY_TEMPLATES)  # trimmed: not every builder is made per call
