"""Graph fetching a message's media: Meta's answers for a file it does not take.

Graph downloads each attachment URL (one attachment, or each of up to 10 images) before it
delivers. The emulator cannot fetch the internet, so it judges only URLs on its own media
host, whose real format and size it reads from the URL itself (``media_files``: the path names
them, the flags say how the host lies); a URL elsewhere is accepted as before.

    missing or unreachable        100 / 2018008  (a forced status, a stall, an unknown format,
                                                  a drip slower than Graph waits, plain http,
                                                  too many redirects)
    over the limit                images 36000 / 2207004 (the fact sheet's example),
                                  others 100 / 2018109; an endless body is over every limit
    the wrong format for the type 100 / 2018047  (the bytes decide: Graph reads the file, so a
                                                  lying Content-Type does not matter, a body
                                                  without a signature does)

The size is checked first: Graph stops downloading at the limit, before it can know the type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from ig_outbound.emulator import graph_errors as ge
from ig_outbound.emulator.graph_errors import GraphError
from ig_outbound.emulator.media_app import MediaHost
from ig_outbound.emulator.media_files import ATTACHMENT_LIMITS, HEADERS, MEDIA_PREFIX

# How long Graph waits for a file: Meta's video fetch gives up after 75 s (fact sheet §4,
# 2018294); taken for every type.
GRAPH_FETCH_TIMEOUT_S: Final = 75.0
# Redirects Graph follows (UNCONFIRMED: Meta states none; browsers' and curl's usual limits
# are higher, the media probe's default is 3).
GRAPH_MAX_REDIRECTS: Final = 5
_PATH = re.compile(re.escape(MEDIA_PREFIX) + r"([^/]+)/([0-9]+)")


@dataclass(frozen=True)
class Fetched:
    """What Graph's download of a file on the media host would find."""

    fmt: str | None  # the format its bytes show; None: no known signature
    size: float  # bytes; math.inf for a body that never ends


def attachment_urls(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(attachment type, URL) of each media attachment by URL of a validated body."""
    message = body.get("message")
    if not isinstance(message, dict):
        return []
    items = message.get("attachments", message.get("attachment"))
    items = [items] if isinstance(items, dict) else items if isinstance(items, list) else []
    return [pair for pair in map(_by_url, items) if pair is not None]


def _by_url(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict) or item.get("type") not in ATTACHMENT_LIMITS:
        return None
    payload = item.get("payload")
    url = payload.get("url") if isinstance(payload, dict) else None
    return (str(item["type"]), url) if isinstance(url, str) else None


def graph_refusal(attachment_type: str, url: str, host: MediaHost) -> GraphError | None:
    """Graph's error for this attachment, or None: it takes the file (or it is elsewhere)."""
    fetched = fetch(url, host)
    if not isinstance(fetched, Fetched):
        return fetched
    formats, max_bytes = ATTACHMENT_LIMITS[attachment_type]
    if fetched.size > max_bytes:
        return ge.image_too_large() if attachment_type == "image" else ge.attachment_too_large()
    if fetched.fmt not in formats:
        return ge.media_type_mismatch()
    return None


def fetch(url: str, host: MediaHost) -> Fetched | GraphError | None:
    """Follow ``url`` the way Graph's download would: the file it ends at, the fetch error,
    or None when it leads off the media host."""
    for _ in range(GRAPH_MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if not host.owns(parts):
            return None
        if parts.scheme.lower() != "https":
            return ge.media_fetch_failed()  # the host speaks TLS only
        flags = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "redirect" not in flags:
            return _file(parts.path, flags)
        url = urljoin(url, _location(parts.path, flags))
    return ge.media_fetch_failed()


def _location(path: str, flags: dict[str, str]) -> str:
    """Where the host's redirect points (``media_app._redirect``)."""
    hops = int(flags["hops"]) if flags.get("hops", "").isdigit() else 1
    if hops > 1:
        return f"{path}?{urlencode({**flags, 'hops': str(hops - 1)})}"
    return flags["redirect"]


def _file(path: str, flags: dict[str, str]) -> Fetched | GraphError:
    match = _PATH.fullmatch(path)
    if match is None or match[1] not in HEADERS:
        return ge.media_fetch_failed()  # the host answers 404
    if "status" in flags or "stall" in flags:
        return ge.media_fetch_failed()  # no file comes
    size = math.inf if "endless" in flags else int(match[2])
    if _drip_s(flags) > 0 and _drip_s(flags) * size > GRAPH_FETCH_TIMEOUT_S:
        return ge.media_fetch_failed()  # "the server is responding fast enough"
    return Fetched(None if "garbage" in flags else match[1], size)


def _drip_s(flags: dict[str, str]) -> float:
    try:
        return max(float(flags.get("drip", "0")), 0.0)
    except ValueError:
        return 0.0
