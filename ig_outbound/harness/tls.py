"""Throwaway TLS material for a private Redis: a CA, a server and a client certificate.

Made fresh for each stack (never checked in, never valid for long), so TLS runs the way
production does: the server proves itself to a client holding the CA, and with mutual TLS
the client proves itself with a certificate signed by the same CA. Needs `cryptography`
(a dev dependency: only tests and benchmarks make certificates).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every name a loopback client may dial the server by.
SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throwaway CA and the server and client certificates it signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class _Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_tls_files(directory: Path, *, valid_days: int = 1) -> TlsFiles:
    """Write a new CA, a server certificate for `SERVER_NAMES` and a client certificate
    into `directory` (created if missing); keys are readable by their owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _issue("ig-outbound test CA", None, valid_days)
    server = _issue("ig-outbound test redis", ca, valid_days, server=True)
    client = _issue("ig-outbound test client", ca, valid_days)
    files = TlsFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    _write_cert(files.ca_cert, ca.cert)
    _write_pair(files.server_cert, files.server_key, server)
    _write_pair(files.client_cert, files.client_key, client)
    return files


def _issue(
    common_name: str, issuer: _Issued | None, valid_days: int, *, server: bool = False
) -> _Issued:
    """A certificate: self-signed CA when `issuer` is None, else a leaf for a server or a
    client (the extended key usage says which, as strict verifiers require)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    # Back-dated: a peer whose clock runs a little behind must not see "not yet valid".
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is None:
        return _Issued(key, _as_ca(builder).sign(key, hashes.SHA256()))
    leaf = _as_leaf(builder, issuer, server=server)
    return _Issued(key, leaf.sign(issuer.key, hashes.SHA256()))


def _as_ca(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    constraints = x509.BasicConstraints(ca=True, path_length=0)
    return builder.add_extension(constraints, True).add_extension(usage, True)


def _as_leaf(
    builder: x509.CertificateBuilder, issuer: _Issued, *, server: bool
) -> x509.CertificateBuilder:
    issuer_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            False,
        )
        .add_extension(x509.ExtendedKeyUsage([purpose]), False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san()), False)
    return builder


def _san() -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in SERVER_NAMES:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_pair(cert_path: Path, key_path: Path, issued: _Issued) -> None:
    _write_cert(cert_path, issued.cert)
    pem = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(pem)
