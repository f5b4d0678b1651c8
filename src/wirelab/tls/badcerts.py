"""Deliberately broken certificates for the chapter 6 lessons (RFC 5280 failures on purpose).

Each lesson endpoint of the lab's ``tls`` service presents one certificate with exactly one
defect, so a reader sees what each failure looks like and what the inspector says:

=============  ===========================================================  ================
endpoint       certificate                                                  verdict
=============  ===========================================================  ================
``expired``    lab CA, valid from 90 to 30 days ago                         ``expired``
``wronghost``  lab CA, for ``wrong.example.net`` only (no addresses)        ``wrong-host``
``selfsigned`` signed by its own key, no CA at all                          ``self-signed``
``untrusted``  signed by a second CA ("wirelab untrusted CA") nobody trusts ``untrusted``
``weakkey``    lab CA, RSA 1024-bit key                                     ``weak-key``
=============  ===========================================================  ================

The weak key needs a server context at OpenSSL security level 1 (Python's default level 2
refuses to even load a 1024-bit key); :func:`lesson_context` lowers it on that one lesson
server only, and returns ``None`` where the local OpenSSL refuses the key at level 1 too:
then the lesson is that the key cannot be served at all. Clients are never lowered.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wirelab.errors import ConfigError
from wirelab.net.ca import IssuedCert, LabCA
from wirelab.net.tlsctx import MINIMUM_TLS_VERSION, server_context

__all__ = [
    "LESSONS",
    "WEAK_RSA_BITS",
    "WRONG_HOST",
    "Lesson",
    "issue_lesson",
    "lesson_context",
    "self_signed",
]

log = logging.getLogger(__name__)

#: The weak key's size: factorable with public effort (RSA-768 fell in 2009; NIST disallowed
#: 1024-bit RSA signatures after 2013, SP 800-131A).
WEAK_RSA_BITS = 1024

#: The only name on the ``wronghost`` certificate.
WRONG_HOST = "wrong.example.net"


@dataclass(frozen=True)
class Lesson:
    """One broken-certificate endpoint: its name, the verdict code it earns, what it shows."""

    endpoint: str
    problem: str
    summary: str


LESSONS: tuple[Lesson, ...] = (
    Lesson("expired", "expired", "a lab-CA certificate that expired 30 days ago"),
    Lesson("wronghost", "wrong-host", f"a lab-CA certificate for {WRONG_HOST} only"),
    Lesson("selfsigned", "self-signed", "a certificate signed by its own key"),
    Lesson("untrusted", "untrusted", "a certificate from a CA that nobody trusts"),
    Lesson("weakkey", "weak-key", f"a lab-CA certificate with an RSA {WEAK_RSA_BITS}-bit key"),
)


def self_signed(hostnames: Sequence[str], ip_addresses: Sequence[str] = ()) -> IssuedCert:
    """A server certificate signed by its own key: well-formed, trusted by no one."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wirelab self-signed"),
            x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), key_pem, b"")


def issue_lesson(
    endpoint: str,
    ca: LabCA,
    directory: Path,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
) -> tuple[Path, Path]:
    """Make the certificate of lesson ``endpoint`` and write it; return (cert, key) paths.

    Args:
        endpoint: one of the :data:`LESSONS` endpoints.
        ca: the lab CA (the trusted one).
        directory: where to write ``<endpoint>.pem`` and ``<endpoint>-key.pem``; the
            untrusted CA lives in its ``untrusted-ca`` subdirectory.
        hostnames: the names a correct certificate would carry.
        ip_addresses: the addresses a correct certificate would carry.

    Raises:
        ConfigError: ``endpoint`` is not a lesson.
    """
    now = dt.datetime.now(dt.UTC)
    if endpoint == "expired":
        issued = ca.issue(
            hostnames,
            ip_addresses=ip_addresses,
            not_before=now - dt.timedelta(days=90),
            not_after=now - dt.timedelta(days=30),
        )
    elif endpoint == "wronghost":
        issued = ca.issue([WRONG_HOST], ip_addresses=())
    elif endpoint == "selfsigned":
        issued = self_signed(hostnames, ip_addresses)
    elif endpoint == "untrusted":
        other = LabCA.load_or_create(directory / "untrusted-ca", name="wirelab untrusted CA")
        issued = other.issue(hostnames, ip_addresses=ip_addresses)
    elif endpoint == "weakkey":
        issued = ca.issue(hostnames, ip_addresses=ip_addresses, key="rsa", rsa_bits=WEAK_RSA_BITS)
    else:
        known = ", ".join(lesson.endpoint for lesson in LESSONS)
        raise ConfigError(f"no certificate lesson {endpoint!r}; the lessons are {known}")
    return issued.write(directory, endpoint)


def lesson_context(endpoint: str, certfile: Path, keyfile: Path) -> ssl.SSLContext | None:
    """A server context presenting a lesson certificate (``None``: OpenSSL will not load it).

    Only ``weakkey`` differs from :func:`~wirelab.net.tlsctx.server_context`: its context is
    built at security level 1, the lowest that still refuses keys under 1024 bits, because at
    level 2 OpenSSL refuses to load the key ("ee key too small").
    """
    if endpoint != "weakkey":
        return server_context(certfile, keyfile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_TLS_VERSION
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
        ctx.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        log.warning(
            "the weak-key lesson cannot be served: this OpenSSL (%s) refuses an RSA %d-bit "
            "key even at security level 1 (%s)",
            ssl.OPENSSL_VERSION,
            WEAK_RSA_BITS,
            exc.reason or exc,
        )
        return None
    return ctx
