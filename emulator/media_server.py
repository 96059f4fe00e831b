"""Running the media host: uvicorn over TLS on a socket and a thread of its own.

``MediaServer`` is the host in this process (the media tests use it directly: start, make
URLs, read what it was asked). The emulator app runs one in its lifespan when
``config.media.enabled`` (``media_host_running``), so ``serve()`` and
``run_emulator_process()`` serve media next to Graph, each on its own port.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import uvicorn

from ig_outbound.emulator.config import MediaConfig
from ig_outbound.emulator.media_app import MediaHost, MediaLog, Seen, create_media_app
from ig_outbound.emulator.media_files import media_url, tag_of

STARTUP_TIMEOUT_S = 10.0


class MediaServer:
    """The media host on a thread of this process. ``config`` must name its certificate
    (``media_with_certificate`` makes one)."""

    def __init__(self, config: MediaConfig, log: MediaLog | None = None) -> None:
        if config.tls_cert_file is None or config.tls_key_file is None:
            raise ValueError("the media host needs tls_cert_file and tls_key_file")
        self.config = config
        self.log = log if log is not None else MediaLog()
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{netloc}:{self.port}"

    @property
    def sni(self) -> list[str | None]:
        """Every TLS server name a client asked for."""
        return self.log.server_names()

    def url(self, fmt: str, size: int, *, host: str | None = None, **lies: object) -> str:
        """A URL of this host (by ``host``, default its address) with ``lies``, tagged for
        ``requests_for`` (see ``media_files.media_url``)."""
        return media_url(self.base_url, fmt, size, host=host, **lies)

    def requests_for(self, url: str) -> list[Seen]:
        """The requests that carried ``url``'s tag (a redirect's hops keep it)."""
        tag = tag_of(url)
        return self.log.requests(tag) if tag is not None else []

    def start(self) -> MediaServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.config.port))  # bound before serving: no port race
        server = self._server = uvicorn.Server(self._uvicorn_config())
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(server.serve(sockets=[self._sock]),),
            name="emulator-media",
            daemon=True,
        )
        self._thread.start()
        self._wait_started(server)
        return self

    def _uvicorn_config(self) -> uvicorn.Config:
        config = uvicorn.Config(
            create_media_app(self.log),
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,  # leave the process' logging alone
            log_level="critical",
            access_log=False,
            server_header=False,
            # Stalled and endless answers must not hold up the stop.
            timeout_graceful_shutdown=1,
            ssl_certfile=str(self.config.tls_cert_file),
            ssl_keyfile=str(self.config.tls_key_file),
        )
        config.load()  # here, so a bad certificate fails start() in the caller's thread
        assert config.ssl is not None
        config.ssl.sni_callback = self._record_server_name
        return config

    def _wait_started(self, server: uvicorn.Server) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not self._thread_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the media host did not start on {self.host}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _record_server_name(self, _conn: object, name: str | None, _context: object) -> None:
        self.log.add_server_name(name)


def media_with_certificate(config: MediaConfig, directory: Path) -> MediaConfig:
    """``config`` with a throwaway CA and certificate in ``directory`` when it names none."""
    if config.tls_cert_file is not None:
        return config
    # Imported here: `cryptography` is loaded only by an emulator that makes certificates.
    from ig_outbound.emulator.media_tls import make_media_tls

    tls = make_media_tls(directory, [config.host])
    update = {"tls_cert_file": tls.cert_file, "tls_key_file": tls.key_file, "ca_file": tls.ca_file}
    return config.model_copy(update=update)


@asynccontextmanager
async def media_host_running(config: MediaConfig, host: MediaHost) -> AsyncIterator[None]:
    """Serve the media host while the block runs, when ``config`` enables it, and tell
    ``host`` (Graph's view) where; a certificate made here is removed at the end."""
    if not config.enabled:
        yield
        return
    with ExitStack() as stack:
        if config.tls_cert_file is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="ig-media-"))
            config = media_with_certificate(config, Path(directory))
        server = MediaServer(config, host.log)
        await asyncio.to_thread(server.start)
        host.attach(config.host, server.port, config.ca_file)
        try:
            yield
        finally:
            host.detach()
            await asyncio.to_thread(server.stop)
