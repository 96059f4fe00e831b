"""A throwaway CA and the media host's certificate, so clients verify it as they would a
real https server: they trust the CA file (a worker's ``media.ca_file``), nothing else.

Made fresh for each run, valid for a day, never checked in. Needs ``cryptography`` (in the
``emulator`` extra); imported only when the media host has no certificate of its own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every name a loopback client may dial the media host by.
LOOPBACK_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class MediaTls:
    """PEM files: the CA clients trust, and the certificate and key the host serves."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_media_tls(directory: Path, names: Iterable[str] = (), *, valid_days: int = 1) -> MediaTls:
    """Write a new CA and a server certificate for ``names`` and the loopback names into
    ``directory`` (created if missing); the key is readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("ig-outbound emulator media CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key, valid_days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .add_extension(_ca_usage(), True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    issuer_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    cert = (
        _builder(_name("ig-outbound emulator media host"), ca_name, key, valid_days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(issuer_id, False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(_alt_names([*LOOPBACK_NAMES, *names])), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = MediaTls(directory / "ca.crt", directory / "media.crt", directory / "media.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.touch(mode=0o600)
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, valid_days: int
) -> x509.CertificateBuilder:
    # Back-dated: a client whose clock runs a little behind must not see "not yet valid".
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):  # unique, in order
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result
