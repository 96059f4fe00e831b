"""What a media URL serves (type, format, size), found without ever reaching inward.

    probe(url, kind)                      the whole probe ends within timeout_s
      each hop: parse (https only) -> resolve, check every address (addresses.py)
                -> connect to the checked address, TLS verified for the URL's host name
      HEAD                                redirects followed by hand: every hop checked
        2xx, a size, a type the kind allows   -> facts (no body read)
        anything else (405, 501, other non-2xx, no size, no type, a generic type or one
        the kind does not allow: a server may lie about a valid file)
      GET Range: bytes=0-<read_bytes-1>   streamed; at most read_bytes kept
        -> size from Content-Range, else Content-Length, else a body that ended in the cap
        -> format from the first bytes (sniff.py)

Redirects count across the whole probe (HEAD and GET hops together), at most
`max_redirects`. One `httpx.AsyncClient` per prober: it holds the TLS context (the system's
CAs plus `ca_file`) and bounds the connections.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import httpx

from ig_outbound.worker.errors import WorkerConfigError
from ig_outbound.worker.media.addresses import AllowList, IPAddress, check_address, resolve_checked
from ig_outbound.worker.media.errors import (
    BAD_CERTIFICATE,
    TOO_MANY_REDIRECTS,
    UNAVAILABLE,
    UNREACHABLE,
    MediaProbeError,
)
from ig_outbound.worker.media.limits import ALL_MEDIA_TYPES, limits_for
from ig_outbound.worker.media.sniff import sniff
from ig_outbound.worker.media.urls import MediaUrl, parse_media_url
from ig_outbound.worker.settings import MediaSettings

__all__ = ["MediaFacts", "MediaProbeError", "MediaProber"]

USER_AGENT: Final = "ig-outbound-media-probe"
# Probes running at once per process (every job's URLs share the pool).
MAX_CONNECTIONS: Final = 64
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# Worth another try later: the server is overloaded or down, or asks us to come back.
_TRANSIENT_STATUS: Final = frozenset({408, 425, 429})
_CONTENT_RANGE: Final = re.compile(r"bytes\s+\d+-\d+/(\d+|\*)", re.IGNORECASE)
_DIGITS: Final = re.compile(r"\d+")


@dataclass(frozen=True)
class MediaFacts:
    """What a probe found. `mime`: the server's Content-Type (lower case, no parameters),
    None when it sent none; `format`: what the first bytes show (sniff.py), None when they
    were not read or show no known format; `size`: total bytes, None when the server would
    not say; `final_url`: after redirects; `sniffed`: the first bytes were read."""

    mime: str | None
    format: str | None
    size: int | None
    final_url: str
    sniffed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MediaFacts:
        """The inverse of `as_dict`; `ValueError` for anything else (a cache entry of
        another version, say)."""
        facts = cls(
            mime=data["mime"],
            format=data["format"],
            size=data["size"],
            final_url=data["final_url"],
            sniffed=data["sniffed"],
        )
        if not facts._well_typed():
            raise ValueError(f"not media facts: {data!r}")
        return facts

    def _well_typed(self) -> bool:
        optional_text = all(v is None or isinstance(v, str) for v in (self.mime, self.format))
        size_ok = self.size is None or (type(self.size) is int and self.size >= 0)
        return (
            optional_text
            and size_ok
            and isinstance(self.final_url, str)
            and (isinstance(self.sniffed, bool))
        )


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer, its body already closed: the first bytes of a GET and whether the
    body ended within them."""

    url: MediaUrl
    status: int
    headers: httpx.Headers
    first_bytes: bytes = b""
    ended: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Hops:
    """The redirect budget of one probe."""

    limit: int
    taken: int = 0

    def take(self) -> None:
        self.taken += 1
        if self.taken > self.limit:
            raise MediaProbeError(TOO_MANY_REDIRECTS, f"more than {self.limit} redirects")


class MediaProber:
    """Probes media URLs under one `MediaSettings`; `aclose()` (or `async with`) when done."""

    def __init__(self, settings: MediaSettings) -> None:
        self._settings = settings
        self._allow = AllowList.parse(settings.allow_hosts)
        self._client = httpx.AsyncClient(
            verify=_ssl_context(settings.ca_file),
            timeout=settings.timeout_s,
            # No kept-alive connection: the pool keys them by address and port only, so a
            # second host name on the same address would ride a TLS session verified for
            # the first name.
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=0),
            follow_redirects=False,
            # No proxy or .netrc from the environment: a proxy would resolve names itself.
            trust_env=False,
            # `identity`: the first bytes are the file's own, and no decompression bomb.
            headers={"Accept-Encoding": "identity", "Accept": "*/*", "User-Agent": USER_AGENT},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def probe(self, url: str, kind: str | None = None) -> MediaFacts:
        """The facts of `url`, or `MediaProbeError`. With `kind`, a HEAD whose type that kind
        does not allow is not taken at its word (the first bytes are read); without, any
        type of the media table is."""
        accept = limits_for(kind).mime_types if kind is not None else ALL_MEDIA_TYPES
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                return await self._probe(url, accept)
        except TimeoutError:
            message = f"no complete answer within {self._settings.timeout_s:g} s"
            raise MediaProbeError(UNREACHABLE, message) from None

    async def _probe(self, url: str, accept: frozenset[str]) -> MediaFacts:
        hops = _Hops(self._settings.max_redirects)
        head = await self._follow("HEAD", url, hops)
        mime = _content_type(head.headers) if head.ok else None
        size = _content_length(head.headers) if head.ok else None
        if mime in accept and size is not None:
            return MediaFacts(mime, None, size, head.url.url)
        get = await self._follow("GET", head.url.url, hops)
        if not get.ok:
            raise _status_error(get)
        get_size = _get_size(get)
        return MediaFacts(
            mime=_content_type(get.headers) or mime,
            format=sniff(get.first_bytes),
            size=get_size if get_size is not None else size,
            final_url=get.url.url,
            sniffed=True,
        )

    async def _follow(self, method: str, url: str, hops: _Hops) -> _Answer:
        """`method` on `url`, following redirects (each hop parsed and checked again)."""
        while True:
            answer = await self._exchange(method, parse_media_url(url))
            location = answer.headers.get("location")
            if answer.status not in _REDIRECTS or location is None:
                return answer
            hops.take()
            url = answer.url.redirect(location)

    async def _exchange(self, method: str, target: MediaUrl) -> _Answer:
        """One request, to the first of the host's checked addresses that takes a connection."""
        addresses = await self._addresses(target)
        failure: httpx.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._send(method, target, ip)
            except httpx.ConnectError as exc:
                _raise_if_bad_certificate(exc, target)
                failure = exc
        raise MediaProbeError(UNREACHABLE, f"cannot connect to {target.host_header}: {failure}")

    async def _addresses(self, target: MediaUrl) -> list[IPAddress]:
        if target.ip is not None:  # a literal: judged as written (a zone id cannot hide it)
            check_address(target.host, target.ip, self._allow)
            return [target.ip]
        return await resolve_checked(target.host, target.port, self._allow)

    async def _send(self, method: str, target: MediaUrl, ip: IPAddress) -> _Answer:
        request = self._client.build_request(
            method,
            target.request_url(ip),
            headers=self._headers(method, target),
            # The certificate is verified for the URL's name, not the address we dial.
            extensions={} if target.ip is not None else {"sni_hostname": target.host.rstrip(".")},
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.ConnectError:
            raise
        except httpx.HTTPError as exc:
            raise MediaProbeError(UNREACHABLE, f"{target.host_header}: {_describe(exc)}") from None
        try:
            first, ended = b"", False
            if method == "GET" and response.is_success:
                first, ended = await _read_first(response, self._settings.read_bytes)
        except httpx.HTTPError as exc:
            raise MediaProbeError(UNREACHABLE, f"{target.host_header}: {_describe(exc)}") from None
        finally:
            await response.aclose()
        return _Answer(target, response.status_code, response.headers, first, ended)

    def _headers(self, method: str, target: MediaUrl) -> dict[str, str]:
        headers = {"Host": target.host_header}
        if method == "GET":
            headers["Range"] = f"bytes=0-{self._settings.read_bytes - 1}"
        return headers


async def _read_first(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether it ended within them. Raw bytes: with
    `identity` asked for, any other encoding is the server's and is not inflated."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            return bytes(kept), False
    return bytes(kept), True


def _content_type(headers: httpx.Headers) -> str | None:
    value = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value or None


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def _get_size(answer: _Answer) -> int | None:
    """The whole file's size from a GET answer: a 206's Content-Range total, else a 200's
    Content-Length, else the length of a body that ended within what we read."""
    if answer.status == 206:
        match = _CONTENT_RANGE.fullmatch(answer.headers.get("content-range", "").strip())
        total = match.group(1) if match else "*"
        return int(total) if total != "*" else None
    length = _content_length(answer.headers)
    if length is not None:
        return length
    return len(answer.first_bytes) if answer.ended else None


def _status_error(answer: _Answer) -> MediaProbeError:
    where = f"HTTP {answer.status} from {answer.url.host_header}"
    if answer.status >= 500 or answer.status in _TRANSIENT_STATUS:
        return MediaProbeError(UNREACHABLE, where)
    return MediaProbeError(UNAVAILABLE, where)


def _raise_if_bad_certificate(exc: BaseException, target: MediaUrl) -> None:
    """A certificate that does not verify is the URL's fault (Meta would refuse it too,
    error 2018008), not a network problem to retry."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            reason = seen.verify_message or str(seen)
            message = f"{target.host_header}: certificate does not verify ({reason})"
            raise MediaProbeError(BAD_CERTIFICATE, message) from None
        seen = seen.__cause__ or seen.__context__


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's CAs, plus `ca_file` when set; host names always checked."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise WorkerConfigError(f"media.ca_file {ca_file}: {exc}") from None
    return context
