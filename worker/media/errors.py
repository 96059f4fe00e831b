"""Why a media probe could not say what a URL serves: `MediaProbeError(code, message)`.

Codes (the policy turns each into a verdict, `worker/media/policy.py`):

    invalid_url          the URL does not parse, or its host or port is not usable
    not_https            the URL, or a redirect, leaves https
    forbidden_address    the host is, or resolves to, an address we never connect to (SSRF)
    too_many_redirects   more than `MediaSettings.max_redirects` hops
    bad_certificate      the server's certificate does not verify for the URL's host name
    unavailable          a permanent HTTP answer (404, 403, 410, ...)
    unreachable          connect failure, timeout, 5xx, 429: worth trying again later

Only `unreachable` is transient; every other code is a property of the URL.
"""

from __future__ import annotations

from typing import Final

from ig_outbound.worker.errors import WorkerError

INVALID_URL: Final = "invalid_url"
NOT_HTTPS: Final = "not_https"
FORBIDDEN_ADDRESS: Final = "forbidden_address"
TOO_MANY_REDIRECTS: Final = "too_many_redirects"
BAD_CERTIFICATE: Final = "bad_certificate"
UNAVAILABLE: Final = "unavailable"
UNREACHABLE: Final = "unreachable"

PROBE_ERROR_CODES: Final = frozenset(
    {
        INVALID_URL,
        NOT_HTTPS,
        FORBIDDEN_ADDRESS,
        TOO_MANY_REDIRECTS,
        BAD_CERTIFICATE,
        UNAVAILABLE,
        UNREACHABLE,
    }
)


class MediaProbeError(WorkerError):
    """A probe ended without facts; `code` is one of `PROBE_ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Whether trying again later may give another answer."""
        return self.code == UNREACHABLE

    def __repr__(self) -> str:
        return f"MediaProbeError({self.code!r}, {self.message!r})"
