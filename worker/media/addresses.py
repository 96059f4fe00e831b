"""Which addresses a media probe may connect to: the SSRF guard.

A media URL comes from a producer, so it may name anything: our Redis, a cloud metadata
service, an admin page on the private network. The rule: every address the host resolves to
must be *global* (`ipaddress`'s `is_global`, which leaves out loopback, RFC 1918, ULA,
link-local, CGNAT 100.64/10, documentation and other special ranges), and neither multicast,
unspecified nor reserved (older Pythons count those as global). An IPv6 address carrying an
IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by that IPv4 address.
`allow_hosts` (`MediaSettings`, tests and the demo only) lets a host name or an IP network
through anyway, except the cloud metadata addresses, which nothing lets through.

Names are resolved with the event loop's `getaddrinfo` (which also reads `2130706433`,
`0177.0.0.1` and `0x7f.1` as 127.0.0.1, as a fetching library would) and the probe connects to
the address checked here, never to the name again: there is no second lookup for DNS
rebinding to slip into.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from ig_outbound.worker.media.errors import FORBIDDEN_ADDRESS, UNREACHABLE, MediaProbeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS, GCP, Azure and others: 169.254.169.254; AWS over IPv6:
# fd00:ec2::254; Alibaba: 100.100.100.200). Never reachable, whatever allow_hosts says.
CLOUD_METADATA: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the IPv4 address is the last 32 bits.
_NAT64: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")

# The first matching class names the refusal; the last one catches whatever else is not global.
_CLASSES: Final[tuple[tuple[str, Callable[[IPAddress], bool]], ...]] = (
    ("cloud metadata", lambda ip: ip in CLOUD_METADATA),
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("shared address space (CGNAT)", lambda ip: ip in _CGNAT),
    ("private", lambda ip: ip.is_private),
    ("reserved", lambda ip: ip.is_reserved),
    ("not global", lambda ip: not ip.is_global),
)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`, compatible
    `::a.b.c.d`, 6to4 `2002:aabb:ccdd::`, NAT64 `64:ff9b::a.b.c.d`), else None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why `ip` is no place for a probe (`loopback`, `private`, ...), or None if it is global.
    An IPv6 address carrying an IPv4 one is judged by the IPv4 address: that is where the
    packets go (a NAT64 or 6to4 form of a public address is public, of 127.0.0.1 is not)."""
    inner = embedded_ipv4(ip)
    judged = inner if inner is not None else ip
    for name, matches in _CLASSES:
        if matches(judged):
            return name if inner is None else f"{name}: carries {inner}"
    return None


@dataclass(frozen=True)
class AllowList:
    """`MediaSettings.allow_hosts` parsed: host names (compared case-insensitively, without a
    trailing dot) and IP networks (`127.0.0.1/32`, `::1`, `10.0.0.0/8`)."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip() for e in entries):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry:
                    names.add(_name(entry))
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, ip: IPAddress) -> bool:
        if _name(host) in self.names:
            return True
        inner = embedded_ipv4(ip)
        return any(form in net for net in self.networks for form in (ip, inner) if form)


def _name(host: str) -> str:
    return host.lower().rstrip(".")


def check_address(host: str, ip: IPAddress, allow: AllowList) -> None:
    """Raise `forbidden_address` unless a probe of `host` may connect to `ip`."""
    inner = embedded_ipv4(ip)
    metadata = ip in CLOUD_METADATA or inner in CLOUD_METADATA
    if not metadata and allow.allows(host, ip):
        return
    why = refusal(ip)
    if why is not None:
        shown = host if _same(host, ip) else f"{host} resolves to {ip}"
        raise MediaProbeError(FORBIDDEN_ADDRESS, f"{shown} ({why})")


def _same(host: str, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == ip
    except ValueError:
        return False


async def resolve_checked(host: str, port: int, allow: AllowList) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, each checked: one forbidden
    address refuses the host (a name that also points inward is not to be trusted)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        # Also a DNS outage, not only a name that does not exist: worth another try later.
        raise MediaProbeError(UNREACHABLE, f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(_address(info[4][0]) for info in infos))
    if not addresses:
        raise MediaProbeError(UNREACHABLE, f"{host} resolves to no address")
    for ip in addresses:
        check_address(host, ip, allow)
    return addresses


def _address(text: str | int) -> IPAddress:
    # The resolver's IPv6 link-local answers carry a zone (`fe80::1%eth0`): the address counts.
    return ipaddress.ip_address(str(text).split("%", 1)[0])
