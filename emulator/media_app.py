"""The media host's ASGI app: files of any format and size, and the lies real servers tell.

``GET|HEAD /media/<format>/<bytes>`` serves the real first bytes of that format
(``media_files.HEADERS``) padded to ``<bytes>``, streamed a chunk at a time (never held
whole), honouring ``Range: bytes=a-b``. Query flags (``media_files.LIES``) make it misbehave:
a wrong or missing Content-Type, no length, HEAD refused, a forced status, an endless body, a
slow drip, a stall, redirects, a body without a signature. An unknown format is a 404.

``MediaLog`` keeps every request and every TLS server name a client asked for, so a test can
show what a prober did (or that it never connected); ``MediaHost`` is what the emulator's
Graph knows of its own media host.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ig_outbound.emulator.media_files import CONTENT_TYPES, HEADERS, LIES, MEDIA_PREFIX

CHUNK = 64 * 1024
LOG_MAX = 10_000
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_NO_SIGNATURE = b"no magic here. " * 4


@dataclass(frozen=True)
class Seen:
    """One request the media host got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class MediaLog:
    """The newest ``maxlen`` requests and TLS server names. Thread-safe: the host serves on
    a thread of its own while Graph's control routes and tests read."""

    def __init__(self, maxlen: int = LOG_MAX) -> None:
        self._lock = threading.Lock()
        self._seen: deque[Seen] = deque(maxlen=maxlen)
        self._names: deque[str | None] = deque(maxlen=maxlen)

    def add_request(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def add_server_name(self, name: str | None) -> None:
        with self._lock:
            self._names.append(name)

    def requests(self, tag: str | None = None) -> list[Seen]:
        """Every request kept, or those that carried ``tag`` (a redirect's hops keep it)."""
        with self._lock:
            return [s for s in self._seen if tag is None or s.query.get("tag") == tag]

    def server_names(self) -> list[str | None]:
        with self._lock:
            return list(self._names)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()
            self._names.clear()


class MediaHost:
    """The emulator's own media host as its Graph sees it: where it serves (once started),
    the CA that signed its certificate, and what it was asked."""

    def __init__(self) -> None:
        self.log = MediaLog()
        self.base_url: str | None = None
        self.ca_file: Path | None = None
        self._names: frozenset[str] = frozenset()
        self._port: int | None = None

    def attach(self, host: str, port: int, ca_file: Path | None) -> None:
        netloc = f"[{host}]" if ":" in host else host
        self.base_url, self.ca_file, self._port = f"https://{netloc}:{port}", ca_file, port
        # A host on 127.0.0.1 is reached by `localhost` too (it resolves there first).
        self._names = frozenset(
            {host.lower(), "localhost"} if host == "127.0.0.1" else {host.lower()}
        )

    def detach(self) -> None:
        self.base_url, self.ca_file, self._names, self._port = None, None, frozenset(), None

    def owns(self, parts: SplitResult) -> bool:
        """Whether a URL (any scheme) names this host's address and port."""
        try:
            port = parts.port
        except ValueError:
            return False
        hostname = (parts.hostname or "").lower()
        return self._port is not None and port == self._port and hostname in self._names

    def info(self) -> dict[str, Any]:
        return {
            "enabled": self.base_url is not None,
            "base_url": self.base_url,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "formats": sorted(HEADERS),
            "lies": dict(LIES),
        }


def create_media_app(log: MediaLog) -> Starlette:
    """The media host's app; it records into ``log``."""

    async def media(request: Request) -> Response:
        query = dict(request.query_params)
        log.add_request(Seen(request.method, request.url.path, query, dict(request.headers)))
        early = await _early_answer(request, query)
        if early is not None:
            return early
        fmt, size = request.path_params["fmt"], request.path_params["size"]
        if fmt not in HEADERS:
            return Response(status_code=404)
        return _file_answer(request, _File(fmt, size, query))

    route = Route(MEDIA_PREFIX + "{fmt}/{size:int}", media, methods=["GET", "HEAD"])
    return Starlette(routes=[route])


async def _early_answer(request: Request, query: dict[str, str]) -> Response | None:
    """The answers that are not the file: redirects, forced statuses, a stall."""
    if "redirect" in query:
        return _redirect(request, query)
    if "status" in query:
        return Response(status_code=_status(query["status"]))
    if "head" in query and request.method == "HEAD":
        return Response(status_code=_status(query["head"]))
    if "stall" in query:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return Response(status_code=599)  # nobody is listening any more
    return None


def _status(text: str) -> int:
    # A status that is not one (a typo in a test) answers 400 rather than crash the request.
    return int(text) if text.isdigit() and 100 <= int(text) <= 599 else 400


def _redirect(request: Request, query: dict[str, str]) -> Response:
    hops = int(query.get("hops", "1")) if query.get("hops", "1").isdigit() else 1
    if hops > 1:
        again = urlencode({**query, "hops": str(hops - 1)})
        return Response(status_code=302, headers={"location": f"{request.url.path}?{again}"})
    return Response(status_code=302, headers={"location": query["redirect"]})


@dataclass(frozen=True)
class _File:
    fmt: str
    size: int
    flags: dict[str, str]

    @property
    def endless(self) -> bool:
        return "endless" in self.flags

    def content_type(self) -> dict[str, str]:
        mime = self.flags.get("type", CONTENT_TYPES[self.fmt])
        return {"content-type": mime} if mime else {}

    def first_bytes(self) -> bytes:
        return _NO_SIGNATURE if "garbage" in self.flags else HEADERS[self.fmt]

    def drip_s(self) -> float:
        try:
            return max(float(self.flags.get("drip", 0)), 0.0)
        except ValueError:
            return 0.0

    def byte_range(self, request: Request) -> tuple[int, int] | None:
        """The (first, last) bytes asked for, when the server honours it."""
        match = _RANGE.fullmatch(request.headers.get("range", ""))
        if match is None or self.endless or "norange" in self.flags:
            return None
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else self.size - 1
        return first, min(last, self.size - 1)


def _file_answer(request: Request, file: _File) -> Response:
    headers = file.content_type()
    hidden = "hidesize" in file.flags or file.endless
    span = file.byte_range(request)
    stop: int | None
    if span is not None and span[0] >= file.size:
        return Response(status_code=416, headers={"content-range": f"bytes */{file.size}"})
    if span is not None:
        total = "*" if hidden else str(file.size)
        headers["content-range"] = f"bytes {span[0]}-{span[1]}/{total}"
        headers["content-length"] = str(span[1] - span[0] + 1)
        status, start, stop = 206, span[0], span[1] + 1
    else:
        if not (hidden or "nolength" in file.flags):
            headers["content-length"] = str(file.size)
        status, start, stop = 200, 0, (None if file.endless else file.size)
    if request.method == "HEAD":
        return StreamingResponse(_nothing(), status_code=status, headers=headers)
    body = _body(file.first_bytes(), start, stop, file.drip_s())
    return StreamingResponse(body, status_code=status, headers=headers)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


async def _body(first: bytes, start: int, stop: int | None, drip_s: float) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``stop`` (None: forever) of ``first`` padded with zeros, a chunk at
    a time (or a byte at a time, ``drip_s`` apart): a 25 MB file never sits in memory."""
    step = 1 if drip_s else CHUNK
    pos = start
    while stop is None or pos < stop:
        n = step if stop is None else min(step, stop - pos)
        piece = first[pos : pos + n]
        yield piece + bytes(n - len(piece))
        pos += n
        # Even without a drip: the loop must run to notice a client that went away (uvicorn
        # drops what is sent to it without waiting), or an endless body never stops.
        await asyncio.sleep(drip_s)
