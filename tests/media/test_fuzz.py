"""Any URL string gets a verdict (policy) or a MediaProbeError (prober), never another
exception. Hosts come from a fixed list (loopback spellings, private and metadata addresses,
the test server, names that cannot resolve): a fuzzer must not probe the internet."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ig_outbound.emulator import MediaServer
from ig_outbound.worker.media import MediaFacts, MediaPolicy, MediaProbeError, MediaProber

SERVER = "{server}"  # the test server's host:port, filled in by the test
HOSTS = [
    SERVER,
    "localhost",
    "LOCALHOST:1",
    "127.0.0.1",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "127.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[fe80::1%25eth0]",
    "[::",
    "169.254.169.254",
    "10.0.0.1:8443",
    "0.0.0.0",
    "user:pass@" + SERVER,
    "example.invalid",
    "xn--nxasmq6b.invalid",
    "münchen.invalid",
    "a b",
    "",
    ":443",
    "256.256.256.256",
    "host:99999",
    "host:-1",
    "ho%00st",
]
SCHEMES = ["https", "HTTPS", "http", "ftp", "file", "javascript", "", "https:"]
PATHS = [
    "media/png/100",
    "media/png/100?head=405",
    "media/png/100?type=&garbage=1",
    "media/png/100?redirect=https://10.0.0.1/",
    "media/gif/9999999?status=503",
    "media/png/1?redirect=//evil.invalid/x",
]

paths = st.sampled_from(PATHS) | st.text(max_size=40)
structured = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(SCHEMES),
    st.sampled_from(HOSTS),
    paths,
)
# Free text with no "/" cannot spell a host of its own ("scheme://host" needs two).
free = st.text(alphabet=st.characters(exclude_characters="/"), max_size=80)
urls = structured | free

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(url=urls)
async def test_any_url_string_gets_facts_or_a_probe_error(
    prober: MediaProber, media_server: MediaServer, url: str
) -> None:
    url = url.replace(SERVER, f"127.0.0.1:{media_server.port}")
    try:
        assert isinstance(await prober.probe(url), MediaFacts)
    except MediaProbeError as exc:
        assert exc.code and exc.message


@FUZZ
@given(url=urls, kind=st.sampled_from(["image", "images", "audio", "video", "file"]))
async def test_any_url_string_gets_a_verdict(
    policy: MediaPolicy, media_server: MediaServer, url: str, kind: str
) -> None:
    url = url.replace(SERVER, f"127.0.0.1:{media_server.port}")
    verdict = await policy.check(kind, [url])
    assert verdict.status in {"ok", "rejected", "unreachable"}
    assert verdict.ok or (verdict.reason or "").startswith("media_")
