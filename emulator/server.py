"""Running the emulator: ``serve()`` in this process, or ``run_emulator_process()`` in a child."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO

import httpx
import uvicorn

from ig_outbound.emulator.app import create_app
from ig_outbound.emulator.config import EmulatorConfig
from ig_outbound.emulator.media_server import media_with_certificate


def make_server(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8000
) -> uvicorn.Server:
    """A uvicorn server for the emulator (uvloop/httptools are used only if installed)."""
    uv_config = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",  # runs webhook delivery and the simulated users
        server_header=False,  # graph.instagram.com does not announce uvicorn
        # Requests hanging on an injected timeout must not hold up shutdown.
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(uv_config)


def serve(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    sock: socket.socket | None = None,
    exit_with_parent: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM. ``sock``: an already bound socket to serve on instead."""
    server = make_server(config, host, port)
    if exit_with_parent:
        _exit_when_orphaned(server)
    server.run(sockets=[sock] if sock is not None else None)


def _exit_when_orphaned(server: uvicorn.Server) -> None:
    """Stop serving if the parent dies without stopping us (so no process is left behind)."""
    parent = os.getppid()

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="emulator-parent-watch", daemon=True).start()


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _bind_free_port(host: str) -> socket.socket:
    # The child inherits this bound socket, so there is no race for the port number.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def run_emulator_process(
    config: EmulatorConfig | None = None,
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 15.0,
    stop_timeout: float = 5.0,
) -> Iterator[str]:
    """Run the emulator (`python -m ig_outbound.emulator`) in a child; yield its URL once up.

    The config (tokens included) goes through a private temp file that is deleted as soon as
    the child is up. On exit the child gets SIGTERM, then SIGKILL after ``stop_timeout``.

    With ``config.media.enabled`` the child also serves media over https on a port of its own;
    without a certificate in the config, a throwaway CA and certificate are made here (and
    removed on exit, whatever became of the child). ``EmulatorControl(url).media()`` tells
    the media host's URL and CA file; ``media_url(format, size, **lies)`` makes file URLs.
    """
    with ExitStack() as stack:
        config = _with_media_certificate(config or EmulatorConfig(), stack)
        yield stack.enter_context(
            _child(config, port, host, startup_timeout=startup_timeout, stop_timeout=stop_timeout)
        )


def _with_media_certificate(config: EmulatorConfig, stack: ExitStack) -> EmulatorConfig:
    if not config.media.enabled or config.media.tls_cert_file is not None:
        return config
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="ig-emulator-media-"))
    media = media_with_certificate(config.media, Path(directory))
    return config.model_copy(update={"media": media})


@contextmanager
def _child(
    config: EmulatorConfig,
    port: int | None,
    host: str,
    *,
    startup_timeout: float,
    stop_timeout: float,
) -> Iterator[str]:
    fd, config_path = tempfile.mkstemp(prefix="ig-emulator-", suffix=".json")  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(config.to_json_with_secrets())
    args = [sys.executable, "-m", "ig_outbound.emulator", "--config", config_path, "--host", host]
    args.append("--exit-with-parent")
    listener: socket.socket | None = None
    pass_fds: tuple[int, ...] = ()
    if port is None:
        listener = _bind_free_port(host)
        port = int(listener.getsockname()[1])
        args += ["--fd", str(listener.fileno())]
        pass_fds = (listener.fileno(),)
    else:
        args += ["--port", str(port)]
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=pass_fds,
            )
        finally:
            if listener is not None:
                listener.close()  # the child holds its own copy
        try:
            base_url = _base_url(host, port)
            _wait_until_up(proc, base_url, startup_timeout, stderr)
            Path(config_path).unlink(missing_ok=True)
            yield base_url
        finally:
            _stop(proc, stop_timeout)
            Path(config_path).unlink(missing_ok=True)


def _read_stderr(stderr: IO[bytes]) -> str:
    with suppress(OSError, ValueError):
        stderr.seek(0)
        return stderr.read().decode("utf-8", errors="replace")[-4000:]
    return ""


def _wait_until_up(
    proc: subprocess.Popen[bytes], base_url: str, timeout: float, stderr: IO[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while True:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"emulator process exited with code {code} during startup:\n"
                    f"{_read_stderr(stderr)}"
                )
            with suppress(httpx.TransportError):
                if client.get(f"{base_url}/_emulator/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"emulator did not answer on {base_url} within {timeout:.0f}s:\n"
                    f"{_read_stderr(stderr)}"
                )
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
