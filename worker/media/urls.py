"""A media URL taken apart for one request to a checked address.

The probe never hands a host name to httpx: it connects to an IP address it checked
(`addresses.py`), so the request URL carries that address, the `Host` header the URL's own
host, and TLS is verified for the URL's host name (httpx's `sni_hostname` extension).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urljoin, urlsplit

import httpx

from ig_outbound.worker.media.addresses import IPAddress
from ig_outbound.worker.media.errors import INVALID_URL, NOT_HTTPS, MediaProbeError

HTTPS_PORT: Final = 443
# A DNS name as it goes on the wire (after IDNA): letters, digits, hyphens, underscores, dots.
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_MAX_HOST: Final = 253
# Reserved characters keep their meaning in the path and query; `%` keeps existing escapes.
_TARGET_SAFE: Final = "/?&=:;@!$'()*+,%[]"


@dataclass(frozen=True)
class MediaUrl:
    """An https URL's parts: `host` (lower case, ASCII, no brackets), `port` and `target`
    (path and query as the URL has them)."""

    url: str
    host: str
    port: int
    target: str

    @property
    def ip(self) -> IPAddress | None:
        """The host when it is an IP address literal (it needs no resolving)."""
        return _ip_or_none(self.host)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == HTTPS_PORT else f"{host}:{self.port}"

    def request_url(self, ip: IPAddress) -> httpx.URL:
        """This URL with `ip` as its host: what httpx connects to. The path goes in as a raw
        path (never joined as a reference: `//other.host/x` is a path here, not a host)."""
        try:
            raw = quote(self.target, safe=_TARGET_SAFE).encode("ascii")
            base = httpx.URL(scheme="https", host=str(ip), port=self.port)
            return base.copy_with(raw_path=raw)
        except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
            raise MediaProbeError(INVALID_URL, f"unusable path: {exc}") from None

    def redirect(self, location: str) -> str:
        """Where a `Location` header points, relative to this URL."""
        try:
            return urljoin(self.url, location)
        except ValueError as exc:
            raise MediaProbeError(INVALID_URL, f"unusable redirect: {exc}") from None


def parse_media_url(url: str) -> MediaUrl:
    """Take `url` apart; `not_https` for another scheme, `invalid_url` for anything that is
    not an absolute https URL with a usable host and port."""
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        raise MediaProbeError(INVALID_URL, f"not a URL: {exc}") from None
    if parts.scheme.lower() != "https":
        raise MediaProbeError(NOT_HTTPS, f"{parts.scheme or 'no'} scheme: only https is probed")
    if port == 0:
        raise MediaProbeError(INVALID_URL, "port 0")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return MediaUrl(url, _host(hostname), port or HTTPS_PORT, target)


def _host(hostname: str | None) -> str:
    if not hostname:
        raise MediaProbeError(INVALID_URL, "no host")
    if _ip_or_none(hostname) is not None:
        return hostname
    try:
        ascii_host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise MediaProbeError(INVALID_URL, f"invalid host name {hostname!r}") from None
    if len(ascii_host) > _MAX_HOST or not _HOST_NAME.fullmatch(ascii_host):
        raise MediaProbeError(INVALID_URL, f"invalid host name {hostname!r}")
    return ascii_host


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
