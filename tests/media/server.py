"""A real https media server for tests (Starlette under uvicorn, in a thread of its own).

`GET|HEAD /media/<format>/<bytes>` serves a generated file: the real first bytes of that
format (samples.py) padded to <bytes>, honouring `Range: bytes=a-b`. Query flags make it
misbehave the ways real servers do:

    type=<mime>      this Content-Type instead of the format's (`type=` sends none)
    head=<status>    HEAD answers this status with no body (405, 501, 403 ...)
    status=<status>  every request answers this status
    nolength=1       no Content-Length on HEAD or a whole body (a 206 still says the total)
    hidesize=1       no size anywhere: no Content-Length, Content-Range total `*`
    norange=1        Range ignored: 200 with the whole body
    endless=1        the body never ends (no length, Range ignored)
    drip=<seconds>   the body one byte at a time, this long apart
    stall=1          no answer at all, until the client goes away
    garbage=1        the body has no signature (the header still says the format's type)
    redirect=<url>   302 to <url>; with hops=<n>, n redirects in all (the others to itself)
    tag=<text>       ignored: tells one test's requests apart (`url()` adds one)

It records every request (`seen`) and every TLS server name a client asked for (`sni`).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ig_outbound.harness.tls import TlsFiles
from ig_outbound.harness.wait import wait_until
from tests.media.samples import CONTENT_TYPES, HEADERS

CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_NO_SIGNATURE = b"no magic here. " * 4


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names


@dataclass
class MediaServer:
    """Start with `start()` (or `with`), stop with `stop()`; listens on `host` (127.0.0.1 or
    ::1: the test certificates name both, and `localhost`)."""

    tls: TlsFiles
    host: str = "127.0.0.1"
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    _sock: socket.socket | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        port: int = self._sock.getsockname()[1]
        return port

    def url(self, fmt: str, size: int, *, host: str | None = None, **flags: object) -> str:
        """A URL of this server (by `host`, default its address), tagged for
        `requests_for`."""
        host = host or self.host
        netloc = f"[{host}]" if ":" in host else host
        query = urlencode({**{k: str(v) for k, v in flags.items()}, "tag": uuid.uuid4().hex})
        return f"https://{netloc}:{self.port}/media/{fmt}/{size}?{query}"

    def requests_for(self, url: str) -> list[Seen]:
        """The requests that carried `url`'s tag (a redirect's hops keep it)."""
        tag = url.rsplit("tag=", 1)[1]
        return [seen for seen in list(self.seen) if seen.query.get("tag") == tag]

    def start(self) -> MediaServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family)
        self._sock.bind((self.host, 0))  # bound before serving: no race for the port
        app = Starlette(
            routes=[Route("/media/{fmt}/{size:int}", self._media, methods=["GET", "HEAD"])]
        )
        config = uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,  # leave the process' logging alone
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=str(self.tls.server_cert),
            ssl_keyfile=str(self.tls.server_key),
        )
        config.load()
        assert config.ssl is not None
        config.ssl.sni_callback = self._record_sni
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=asyncio.run, args=(server.serve(sockets=[self._sock]),), daemon=True
        )
        self._thread.start()
        wait_until(lambda: server.started or not self._thread_alive(), 10, "the media server")
        assert server.started, "the media server failed to start"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _record_sni(self, _conn: object, name: str | None, _context: object) -> None:
        self.sni.append(name)

    async def _media(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.seen.append(
            Seen(request.method, request.url.path, query, dict(request.headers.items()))
        )
        early = await _early_answer(request, query)
        if early is not None:
            return early
        fmt, size = request.path_params["fmt"], request.path_params["size"]
        return _file_answer(request, _File(fmt, size, query))


async def _early_answer(request: Request, query: dict[str, str]) -> Response | None:
    """The answers that are not the file: redirects, forced statuses, a stall."""
    if "redirect" in query:
        return _redirect(request, query)
    if "status" in query:
        return Response(status_code=int(query["status"]))
    if "head" in query and request.method == "HEAD":
        return Response(status_code=int(query["head"]))
    if "stall" in query:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return Response(status_code=599)  # nobody is listening any more
    return None


def _redirect(request: Request, query: dict[str, str]) -> Response:
    hops = int(query.get("hops", "1"))
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
    body = _body(file.first_bytes(), start, stop, float(file.flags.get("drip", 0)))
    return StreamingResponse(body, status_code=status, headers=headers)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


async def _body(first: bytes, start: int, stop: int | None, drip_s: float) -> AsyncIterator[bytes]:
    """Bytes `start` to `stop` (None: forever) of `first` padded with zeros, a chunk at a time
    (or a byte at a time, `drip_s` apart)."""
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
