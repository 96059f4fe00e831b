"""One Redis connection story: the URL and settings are read the same way on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ig_outbound.producers.connection import RedisTargetError, redis_params
from ig_outbound.producers.settings import ClientSettings


def test_percent_encoded_passwords_and_acl_user_names_are_decoded() -> None:
    p = redis_params(
        ClientSettings(redis_url="redis://svc%40igo:p%40ss%3Aw%2Frd@db.internal:6380/3")
    )
    assert (p.username, p.password, p.host, p.port, p.db) == (
        "svc@igo", "p@ss:w/rd", "db.internal", 6380, 3,
    )  # fmt: skip
    assert "p@ss" not in p.display and "***" in p.display and "svc%40igo" in p.display
    assert "p@ss" not in repr(p)


def test_rediss_query_options_are_kept_and_settings_win() -> None:
    url = "rediss://:secret@cache:6379/0?ssl_cert_reqs=none&ssl_ca_certs=/url/ca.pem"
    p = redis_params(ClientSettings(redis_url=url))
    assert p.tls and p.cert_reqs == "none" and p.ca_file == "/url/ca.pem"
    p = redis_params(ClientSettings(redis_url=url, redis_tls_ca_file=Path("/settings/ca.pem")))
    assert p.ca_file == "/settings/ca.pem"
    kwargs = p.connection_kwargs()
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == "/settings/ca.pem"
    assert p.display.startswith("rediss://:***@cache:6379")


def test_db_from_the_query_and_timeouts_from_the_url_or_settings() -> None:
    p = redis_params(ClientSettings(redis_url="redis://h/2?db=5&socket_timeout=1.5"))
    assert (p.db, p.socket_timeout_s, p.connect_timeout_s) == (5, 1.5, 2.0)


def test_sentinels_replace_the_url_host() -> None:
    settings = ClientSettings(
        redis_url="redis://:pw@ignored:1/4",
        redis_sentinels=["s1:26379", "[::1]:26380"],
        redis_sentinel_master="igo-primary",
    )
    p = redis_params(settings)
    assert p.sentinels == (("s1", 26379), ("::1", 26380))
    assert p.display == "redis+sentinel://:***@s1:26379,::1:26380/igo-primary/4"


@pytest.mark.parametrize(
    ("url", "sentinels", "message"),
    [
        ("http://h:6379", [], "IG_OUTBOUND_REDIS_URL"),
        ("redis://h:6379/0?socket_timeout=soon", [], "socket_timeout"),
        ("redis://h/0", ["no-port"], "sentinel"),
    ],
)
def test_unusable_targets_are_refused_by_name(url: str, sentinels: list[str], message: str) -> None:
    with pytest.raises(RedisTargetError, match=message):
        redis_params(ClientSettings(redis_url=url, redis_sentinels=sentinels))
