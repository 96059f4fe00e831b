"""Logging never blocks: a stalled stderr costs dropped (counted) lines, never a stuck loop."""

from __future__ import annotations

import io
import os

from ig_outbound.logs import LineSink


def test_a_stalled_stream_never_blocks_the_caller_and_drops_are_counted() -> None:
    read_end, write_end = os.pipe()  # nobody reads: the pipe fills after ~64 KB
    stream = os.fdopen(write_end, "w")
    try:
        sink = LineSink(stream, maxsize=100)
        # 5,000 lines of 2 KB: far more than the pipe and the queue hold together. A write
        # that blocked the caller would hang here (the suite's timeout fails the test).
        for n in range(5_000):
            sink.write_line(f"line {n} " + "x" * 2_000)
        assert sink.dropped > 0
        assert not sink.flush(timeout_s=0.2)  # the writer is stuck on the full pipe
    finally:
        os.close(read_end)  # the writer's next write fails; it carries on


def test_lines_reach_the_stream_in_order() -> None:
    stream = io.StringIO()
    sink = LineSink(stream)
    for n in range(1_000):
        sink.write_line(f"line {n}")
    assert sink.flush(timeout_s=5)
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(1_000)]
    assert sink.dropped == 0
