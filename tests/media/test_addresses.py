"""Which addresses a probe may reach: the rule, address by address (no network here; the
prober's own tests show the rule is applied before any connection)."""

from __future__ import annotations

import ipaddress

import pytest

from ig_outbound.worker.media import AllowList, MediaProbeError, check_address, refusal

REFUSED = {
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "127.0.0.1": "loopback",
    "127.1.2.3": "loopback",
    "169.254.1.1": "link-local",
    "169.254.169.254": "cloud metadata",
    "100.64.0.1": "shared address space (CGNAT)",
    "100.100.100.200": "cloud metadata",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "0.0.0.0": "unspecified",
    "240.0.0.1": "private",  # reserved 240/4: Python files it under is_private first
    "255.255.255.255": "private",
    "192.0.2.10": "private",  # documentation
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fd00:ec2::254": "cloud metadata",
    "fe80::1": "link-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "::ffff:127.0.0.1": "loopback: carries 127.0.0.1",
    "::ffff:10.0.0.1": "private: carries 10.0.0.1",
    "::ffff:169.254.169.254": "cloud metadata: carries 169.254.169.254",
    "::127.0.0.1": "loopback: carries 127.0.0.1",
    "2002:7f00:1::": "loopback: carries 127.0.0.1",
    "2002:a9fe:a9fe::": "cloud metadata: carries 169.254.169.254",
    "64:ff9b::7f00:1": "loopback: carries 127.0.0.1",
    "64:ff9b::a00:1": "private: carries 10.0.0.1",
    "2001:db8::1": "private",  # documentation
}
GLOBAL = ["8.8.8.8", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "why"), REFUSED.items(), ids=REFUSED.keys())
def test_every_non_global_address_class_is_refused_by_name(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_and_their_ipv6_wrappings_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_hosts_takes_names_case_insensitively_and_networks() -> None:
    allow = AllowList.parse(["Media.Test.", "127.0.0.1/32", "fd00::/8"])
    check_address("media.test", ipaddress.ip_address("10.1.1.1"), allow)
    check_address("MEDIA.TEST.", ipaddress.ip_address("10.1.1.1"), allow)
    check_address("other", ipaddress.ip_address("127.0.0.1"), allow)
    check_address("other", ipaddress.ip_address("::ffff:127.0.0.1"), allow)
    check_address("other", ipaddress.ip_address("fd00::5"), allow)
    with pytest.raises(MediaProbeError, match=r"other resolves to 127\.0\.0\.2 \(loopback\)"):
        check_address("other", ipaddress.ip_address("127.0.0.2"), allow)


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_cloud_metadata_stays_refused_whatever_allow_hosts_says(address: str) -> None:
    allow = AllowList.parse(["0.0.0.0/0", "::/0", "metadata.google.internal"])
    with pytest.raises(MediaProbeError) as caught:
        check_address("metadata.google.internal", ipaddress.ip_address(address), allow)
    assert caught.value.code == "forbidden_address"
    assert "cloud metadata" in caught.value.message
