"""The media verdict: may these URLs go to Graph as this kind?

    check(kind, urls) -> MediaVerdict
      each distinct URL, at most MAX_PARALLEL_PROBES at once: the fleet's cached result
      (cache.py), else a probe (probe.py); then judged against the table (limits.py)
      ok            every URL passes (or `MediaSettings.probe` is off)
      rejected      the first URL, in the intent's order, that cannot pass; the reason names
                    the limit: `media_too_large: 9.1 MB > 8 MB for image`,
                    `media_wrong_type: text/html for image (png, jpeg, gif)`,
                    `media_<probe error code>: ...` (forbidden_address, not_https, ...)
      unreachable   none rejected, but one could not be probed (`media_unreachable: ...`):
                    the caller retries it like a transient error, then fails it with
                    `media_unreachable`

Where a probe cannot be sure, Graph decides:
- an unknown size (no Content-Length, no Content-Range total, a body longer than
  `read_bytes`) passes;
- the type: the first bytes win when they show a known format (a valid file behind a lying
  header passes, a PDF served as image/png does not); when they show none, or were not read
  (HEAD was enough), the header's type decides. So an unreadable signature passes only under
  an allowed header type; under none, or a generic one, it is rejected.

Sizes are in binary megabytes (limits.py), rounded up to a tenth, so a size over the limit
never reads as the limit itself (`8.1 MB > 8 MB` for 8 MB and one byte).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal, Self

from redis.asyncio import Redis

from ig_outbound.producers.keys import Keys
from ig_outbound.worker.media.cache import MediaCache, Result
from ig_outbound.worker.media.errors import MediaProbeError
from ig_outbound.worker.media.limits import FORMAT_TYPES, MB, KindLimits, limits_for
from ig_outbound.worker.media.probe import MediaFacts, MediaProber
from ig_outbound.worker.settings import MediaSettings

__all__ = ["MAX_PARALLEL_PROBES", "MediaPolicy", "MediaVerdict", "judge"]

# URLs of one intent probed at once (an `images` intent has up to 10).
MAX_PARALLEL_PROBES: Final = 4

VerdictStatus = Literal["ok", "rejected", "unreachable"]


@dataclass(frozen=True)
class MediaVerdict:
    """`ok`, or `rejected` / `unreachable` with the `reason` (outcome text) and the `url`
    it is about."""

    status: VerdictStatus
    reason: str | None = None
    url: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


OK: Final = MediaVerdict("ok")


class MediaPolicy:
    """Checks an intent's media URLs; one per worker process (it owns a `MediaProber`)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: MediaSettings,
        prober: MediaProber | None = None,
    ) -> None:
        self._settings = settings
        self._cache = MediaCache(redis, keys, settings.cache_ttl_s)
        self._prober = prober if prober is not None else MediaProber(settings)

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
        await self._prober.aclose()

    async def check(self, kind: str, urls: Sequence[str]) -> MediaVerdict:
        """The verdict on `urls` as media of `kind` (`image`, `images`, `audio`, `video`,
        `file`; `ValueError` for a kind without media). Redis errors propagate."""
        limits = limits_for(kind)
        if not self._settings.probe or not urls:
            return OK
        gate = asyncio.Semaphore(MAX_PARALLEL_PROBES)

        async def check_one(url: str) -> MediaVerdict:
            async with gate:
                return await self._check_one(limits, url)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(check_one(url)) for url in dict.fromkeys(urls)]
        except ExceptionGroup as failed:
            # Redis down, say: the caller gets the error it knows, not a group of them.
            raise failed.exceptions[0] from failed
        return _combine([task.result() for task in tasks])

    async def _check_one(self, limits: KindLimits, url: str) -> MediaVerdict:
        result = await self._result(limits, url)
        if isinstance(result, MediaProbeError):
            status: VerdictStatus = "unreachable" if result.transient else "rejected"
            return MediaVerdict(status, f"media_{result.code}: {result.message}", url)
        problem = judge(limits, result)
        return OK if problem is None else MediaVerdict("rejected", problem, url)

    async def _result(self, limits: KindLimits, url: str) -> Result:
        cached = await self._cache.get(url)
        if cached is not None and not _needs_first_bytes(limits, cached):
            return cached
        result: Result
        try:
            result = await self._prober.probe(url, limits.kind)
        except MediaProbeError as exc:
            result = exc
        await self._cache.put(url, result)
        return result


def judge(limits: KindLimits, facts: MediaFacts) -> str | None:
    """The rejection reason for `facts` as media of `limits.kind`, or None if they pass."""
    if not _type_allowed(limits, facts):
        return f"media_wrong_type: {_served_as(facts)} for {limits.describe()}"
    if facts.size is not None and facts.size > limits.max_bytes:
        limit = f"{limits.max_bytes // MB} MB"
        return f"media_too_large: {_megabytes(facts.size)} > {limit} for {limits.kind}"
    return None


def _type_allowed(limits: KindLimits, facts: MediaFacts) -> bool:
    if facts.format is not None:
        return limits.allows_format(facts.format)
    return facts.mime is not None and limits.allows_mime(facts.mime)


def _needs_first_bytes(limits: KindLimits, cached: Result) -> bool:
    """Cached facts from a HEAD another kind was content with, whose header type this kind
    does not allow: the first bytes may still show an allowed format."""
    return (
        isinstance(cached, MediaFacts)
        and not cached.sniffed
        and not (cached.mime is not None and limits.allows_mime(cached.mime))
    )


def _served_as(facts: MediaFacts) -> str:
    """How a verdict names what the URL serves: the header's type, or the format the bytes
    show, with the header's type when that names something else."""
    if facts.format is None:
        return facts.mime or "no content type"
    if facts.mime is None or facts.mime in FORMAT_TYPES.get(facts.format, ()):
        return facts.mime or facts.format
    return f"{facts.format} (sent as {facts.mime})"


def _megabytes(size: int) -> str:
    tenths = -(-size * 10 // MB)  # rounded up: over the limit never shows as the limit
    return f"{tenths // 10}.{tenths % 10} MB"


def _combine(verdicts: list[MediaVerdict]) -> MediaVerdict:
    """The first rejection (a retry cannot help it), else the first unreachable, else ok."""
    for status in ("rejected", "unreachable"):
        for verdict in verdicts:
            if verdict.status == status:
                return verdict
    return OK
