"""Logging of every ig-outbound process (worker, gateway): structlog JSON lines, bound
context, tokens redacted as a last line of defence.

Logging never blocks the event loop: every line (ours through structlog, ARQ's through stdlib
logging) goes into a bounded in-memory queue, and one writer thread writes it to stderr. When
stderr stalls (a full pipe nobody reads, a slow log shipper) only that thread waits; once the
queue is full new lines are dropped and counted (`ig_outbound_log_lines_dropped_total`),
so a stuck log can never stop sends or let their leases lapse. (Each process counts drops
in its own metrics through `on_drop`.)
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import structlog

_SECRETS: list[str] = []
# Lines waiting for the writer thread; at ~300 bytes a line this is at most a few MB.
QUEUE_LINES = 10_000
# At exit the writer gets this long to drain what is queued (a stalled stderr must not
# keep a stopping worker alive).
EXIT_FLUSH_S = 2.0


class LineSink:
    """A bounded queue of rendered lines and the one thread that writes them out."""

    def __init__(self, stream: TextIO, maxsize: int = QUEUE_LINES) -> None:
        self._stream = stream
        self.on_drop: Callable[[], None] = lambda: None
        self._queue: queue.Queue[str] = queue.Queue(maxsize)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="ig-outbound-log", daemon=True)
        self._thread.start()

    def write_line(self, line: str) -> None:
        """Queue one line; never blocks. A full queue drops the line and counts it."""
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1
            self.on_drop()

    def _run(self) -> None:
        while True:
            lines = [self._queue.get()]
            while len(lines) < 500:  # write what has piled up in one go
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._stream.write("".join(f"{line}\n" for line in lines))
                self._stream.flush()
            except (OSError, ValueError):
                pass  # stderr closed or broken: nothing sensible left to do with the line
            finally:
                for _ in lines:
                    self._queue.task_done()

    def flush(self, timeout_s: float = EXIT_FLUSH_S) -> bool:
        """Wait up to `timeout_s` for the queued lines to be written; True if they were."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


class _QueuedLogger:
    """structlog's final logger: hands the rendered line to the sink."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def msg(self, message: str) -> None:
        self._sink.write_line(message)

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


class _QueuedHandler(logging.Handler):
    """stdlib logging (ARQ, httpx) into the same sink, rendered like our own lines."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write_line(self.format(record))
        except Exception:
            self.handleError(record)


_SINK: LineSink | None = None


def _sink() -> LineSink:
    global _SINK
    if _SINK is None:
        _SINK = LineSink(sys.stderr)
        atexit.register(_SINK.flush)
    return _SINK


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace any known token that slipped into a log field (it should never get there)."""
    if not _SECRETS:
        return event
    for name, value in event.items():
        if isinstance(value, str):
            for secret in _SECRETS:
                if secret and secret in value:
                    value = value.replace(secret, "[redacted]")
            event[name] = value
    return event


def set_secrets(secrets: Iterable[str]) -> None:
    """Replace the tokens redacted from log lines (tokens change: reloads, refreshes)."""
    _SECRETS[:] = sorted({s for s in secrets if s}, key=len, reverse=True)


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    secrets: Iterable[str] = (),
    on_drop: Callable[[], None] | None = None,
) -> None:
    """Configure structlog (our lines) and render stdlib logging (arq's) the same way;
    `on_drop` is called for every line dropped because stderr could not keep up."""
    set_secrets(secrets)
    sink = _sink()
    if on_drop is not None:
        sink.on_drop = on_drop
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Our lines skip stdlib logging (its formatter cost about 0.5 ms per outcome line).
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=lambda *_: _QueuedLogger(sink),
        # Filtering bound logger: a disabled level costs nothing (no event dict is built).
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = _QueuedHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processor=renderer)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # arq logs each job with its arguments (message text) at INFO: never let that through.
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    logging.getLogger("arq.jobs").setLevel(logging.WARNING)
    # httpx logs every request line at INFO; keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
