"""X.509 certificates described for people (RFC 5280), parsed with ``cryptography``.

:func:`describe` turns the DER bytes a TLS peer sent into a :class:`CertInfo`: subject,
issuer, subjectAltName entries, validity, public key type and size, signature algorithm,
whether it is a CA, and whether it signed itself. Nothing here touches the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from wirelab.errors import RemoteProtocolError

__all__ = ["CertInfo", "common_name", "describe", "describe_chain"]

#: "RSA_WITH_SHA256" -> "rsa-with-sha256", from cryptography's own OID table.
_SIGNATURE_NAMES: dict[str, str] = {
    oid.dotted_string: attr.lower().replace("_", "-")
    for attr, oid in vars(SignatureAlgorithmOID).items()
    if not attr.startswith("_") and isinstance(oid, x509.ObjectIdentifier)
}


@dataclass(frozen=True)
class CertInfo:
    """What one certificate says, in plain values.

    Attributes:
        subject: the subject as an RFC 4514 string (``CN=localhost,O=wirelab``).
        issuer: the issuer, the same way.
        serial: the serial number in hex.
        not_before: start of validity (UTC).
        not_after: end of validity (UTC).
        dns_names: subjectAltName DNS entries.
        ip_addresses: subjectAltName IP address entries.
        key_type: ``RSA``, ``EC``, ``Ed25519``, ``Ed448``, ``DSA`` (or the class name).
        key_bits: the key size in bits.
        curve: the elliptic curve's name for EC keys (``secp256r1``).
        signature_algorithm: e.g. ``ecdsa-with-sha256`` (or the dotted OID when unknown).
        is_ca: basicConstraints says CA:TRUE.
        self_signed: the issuer is the subject and the signature verifies with its own key.
        sha256: SHA-256 fingerprint of the DER bytes, hex with colons.
    """

    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    key_type: str
    key_bits: int
    curve: str | None
    signature_algorithm: str
    is_ca: bool
    self_signed: bool
    sha256: str

    @property
    def key(self) -> str:
        """``RSA 2048``, ``EC 256 (secp256r1)``."""
        text = f"{self.key_type} {self.key_bits}"
        return f"{text} ({self.curve})" if self.curve else text

    @property
    def names(self) -> tuple[str, ...]:
        """Every subjectAltName entry, DNS names first."""
        return self.dns_names + self.ip_addresses

    def expired(self, now: dt.datetime | None = None) -> bool:
        """True when ``now`` (default: the current time) is past ``not_after``."""
        return (now or dt.datetime.now(dt.UTC)) > self.not_after

    def not_yet_valid(self, now: dt.datetime | None = None) -> bool:
        """True when ``now`` is before ``not_before``."""
        return (now or dt.datetime.now(dt.UTC)) < self.not_before

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "curve": self.curve,
            "signature_algorithm": self.signature_algorithm,
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
            "sha256": self.sha256,
        }


def _key(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except ValueError:  # an algorithm cryptography does not know
        return ("unknown", 0, None)
    if isinstance(key, rsa.RSAPublicKey):
        return ("RSA", key.key_size, None)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("EC", key.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("Ed25519", 256, None)
    if isinstance(key, ed448.Ed448PublicKey):
        return ("Ed448", 456, None)
    if isinstance(key, dsa.DSAPublicKey):
        return ("DSA", key.key_size, None)
    return (type(key).__name__, 0, None)


def _san(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ((), ())
    dns = tuple(ext.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return dns, ips


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):  # wrong key, or an unsupported algorithm
        return False
    return True


def describe(der: bytes) -> CertInfo:
    """Describe the certificate in ``der`` (DER bytes, as TLS carries it).

    Raises:
        RemoteProtocolError: the bytes are not a certificate ``cryptography`` can parse.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        dns, ips = _san(cert)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
    except ValueError as exc:
        raise RemoteProtocolError(
            f"the peer sent a certificate that does not parse: {exc}"
        ) from exc
    key_type, key_bits, curve = _key(cert)
    oid = cert.signature_algorithm_oid.dotted_string
    digest = hashlib.sha256(der).hexdigest().upper()
    return CertInfo(
        subject=subject or "(empty subject)",
        issuer=issuer or "(empty issuer)",
        serial=f"{cert.serial_number:X}",
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns,
        ip_addresses=ips,
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=_SIGNATURE_NAMES.get(oid, oid),
        is_ca=_is_ca(cert),
        self_signed=_self_signed(cert),
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
    )


def common_name(der: bytes) -> str | None:
    """The subject's common name of the certificate in ``der`` (``None`` if it has none)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(names[0].value) if names else None


def describe_chain(ders: list[bytes]) -> tuple[CertInfo, ...]:
    """Describe every certificate of a chain, leaf first."""
    return tuple(describe(der) for der in ders)
