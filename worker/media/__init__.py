"""Media URLs checked before a send: type and size against the seed's table, fetched
without ever letting a producer's URL reach our own network (SSRF).

    limits.py     the table: formats, MIME types and max bytes per kind
    sniff.py      a format from the first bytes
    addresses.py  which addresses a probe may connect to; resolve-and-check
    urls.py       a URL taken apart for a request to a checked address
    probe.py      MediaProber: HEAD, else a ranged GET -> MediaFacts | MediaProbeError
    cache.py      the fleet's cache of probe results (Redis)
    policy.py     MediaPolicy.check(kind, urls) -> MediaVerdict
"""

from ig_outbound.worker.media.addresses import AllowList, check_address, refusal, resolve_checked
from ig_outbound.worker.media.cache import FAILURE_TTL_S, MediaCache, media_cache_key
from ig_outbound.worker.media.errors import PROBE_ERROR_CODES, MediaProbeError
from ig_outbound.worker.media.limits import MB, MEDIA_LIMITS, KindLimits, limits_for
from ig_outbound.worker.media.policy import MAX_PARALLEL_PROBES, MediaPolicy, MediaVerdict, judge
from ig_outbound.worker.media.probe import MediaFacts, MediaProber
from ig_outbound.worker.media.sniff import sniff

__all__ = [
    "FAILURE_TTL_S",
    "MAX_PARALLEL_PROBES",
    "MB",
    "MEDIA_LIMITS",
    "PROBE_ERROR_CODES",
    "AllowList",
    "KindLimits",
    "MediaCache",
    "MediaFacts",
    "MediaPolicy",
    "MediaProbeError",
    "MediaProber",
    "MediaVerdict",
    "check_address",
    "judge",
    "limits_for",
    "media_cache_key",
    "refusal",
    "resolve_checked",
    "sniff",
]
