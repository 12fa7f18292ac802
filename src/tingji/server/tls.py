"""HTTPS for ``tingji serve --https``: the operator's certificate, or one tingji makes itself.

Browsers let a page use the microphone only over https (or on localhost), so serving the LAN
needs a certificate. With none given, :func:`self_signed` makes one once, in
``<data_dir>/tls/``: an EC P-256 key (mode 0600) and a certificate for ``localhost``,
``127.0.0.1``, ``::1``, the host name and the machine's own addresses, reused on every later
start until it is about to expire. Users trust it by checking its SHA-256 fingerprint when the
browser warns, or by importing ``cert.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tingji.config import Settings
from tingji.errors import OptionError, OutputError
from tingji.server.access import write_private

if TYPE_CHECKING:
    from cryptography import x509

VALID_DAYS = 825
"""Lifetime of a made certificate: the longest Apple's platforms accept for TLS."""
RENEW_DAYS = 30
"""A made certificate this close to its end is replaced at start-up."""


@dataclass(frozen=True)
class Certificate:
    """The files uvicorn serves with, and what the start-up banner tells about them."""

    certfile: Path
    keyfile: Path | None
    fingerprint: str
    """SHA-256 of the certificate, as browsers show it: ``AB:CD:…``."""
    made: bool
    """Made by tingji (self-signed), as opposed to given by the operator."""


def certificate(settings: Settings) -> Certificate | None:
    """The certificate to serve with: the configured files, a made one, or None (plain http)."""
    if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
        raise OptionError("--ssl-keyfile needs --ssl-certfile (the certificate it belongs to)")
    if settings.ssl_certfile is not None:
        for path in (settings.ssl_certfile, settings.ssl_keyfile):
            if path is not None and not path.is_file():
                raise OptionError(f"no such certificate or key file: {path}")
        return Certificate(
            settings.ssl_certfile,
            settings.ssl_keyfile,
            fingerprint(settings.ssl_certfile),
            made=False,
        )
    if not settings.https:
        return None
    certfile, keyfile = self_signed(settings.data_dir / "tls", names(settings.host))
    return Certificate(certfile, keyfile, fingerprint(certfile), made=True)


def self_signed(folder: Path, hosts: list[str]) -> tuple[Path, Path]:
    """``folder/cert.pem`` and ``folder/key.pem``: reused while valid, else made for ``hosts``."""
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    if certfile.is_file() and keyfile.is_file() and _lasts(certfile):
        return certfile, keyfile
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tingji"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"tingji on {socket.gethostname()}"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_private(keyfile, key_pem)
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise OutputError(f"cannot write the certificate to {folder}: {exc.strerror}") from exc
    return certfile, keyfile


def fingerprint(certfile: Path) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file, ``AB:CD:…``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError) as exc:
        raise OptionError(f"{certfile} is not a PEM certificate: {exc}") from exc
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def names(host: str) -> list[str]:
    """What a made certificate is for: localhost, the loopback addresses, the host name, the
    machine's own addresses (read from its interfaces, no network needed) and ``host``."""
    found = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *local_addresses()]
    bound = host.strip("[]")
    if bound and bound not in ("0", "0.0.0.0", "::"):
        found.append(bound)
    return list(dict.fromkeys(n for n in found if n))


def local_addresses() -> list[str]:
    """This machine's non-loopback IP addresses (link-local ones left out)."""
    import psutil

    addresses = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(entry.address.split("%", 1)[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                addresses.append(str(ip))
    return addresses


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    alt: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    return alt


def _lasts(certfile: Path) -> bool:
    """The certificate reads and has more than :data:`RENEW_DAYS` left."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError):
        return False
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > dt.timedelta(days=RENEW_DAYS)
