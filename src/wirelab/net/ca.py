"""The lab certificate authority: X.509 certificates for the lab's TLS services (RFC 5280).

Layer: certificates, below TLS (:mod:`wirelab.net.tlsctx` builds contexts from these files).

The book's playground CA fails Python 3.13's strict verification (``VERIFY_X509_STRICT``):
its basicConstraints is not critical, it has no keyUsage, and its leaves are v1 with no
subjectAltName. This CA is made on first use in the lab's state directory, its key never leaves
that directory, and every certificate it makes follows these RFC 5280 points:

* 4.1.2.1 version 3 (extensions need it).
* 4.1.2.2 serial number: positive, at most 20 octets, unique - 159 random bits.
* 4.2.1.9 basicConstraints: cA TRUE and critical in the CA (pathLenConstraint 0: it signs
  leaves only); cA FALSE in leaves, critical too.
* 4.2.1.3 keyUsage, critical: keyCertSign and cRLSign in the CA; digitalSignature in leaves
  (plus keyEncipherment for RSA keys, used by TLS 1.2 RSA key exchange).
* 4.2.1.2 subjectKeyIdentifier: in the CA (a MUST) and in leaves (a SHOULD).
* 4.2.1.1 authorityKeyIdentifier: the issuer's subjectKeyIdentifier, in every certificate.
* 4.2.1.6 subjectAltName: host names as dNSName (RFC 1034 preferred syntax), addresses as
  iPAddress; clients match these, not the common name (RFC 6125 6.4.4). The subject always
  holds an organisation, so it is never empty and the extension need not be critical.
* 4.2.1.12 extendedKeyUsage: serverAuth, or clientAuth for client certificates.
* Appendix A ``ub-common-name``: a common name has at most 64 characters.

Files in the CA directory (mode 0700): ``ca.pem`` (the certificate), ``ca-key.pem`` (its key,
0600) and ``certs/`` (cached server certificates). A lock file serialises processes that make
or read them at the same time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wirelab.config import private_dir
from wirelab.errors import ConfigError

__all__ = ["CA_VALIDITY", "RENEW_BEFORE", "IssuedCert", "KeyKind", "LabCA"]

log = logging.getLogger(__name__)

#: Key algorithms the CA can make: EC P-256 (fast, the default) or RSA.
KeyKind = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Lifetime of a new lab CA: about ten years.
CA_VALIDITY = dt.timedelta(days=3650)
#: A CA or cached certificate this close to expiry is made again rather than reused.
RENEW_BEFORE = dt.timedelta(days=30)
#: Certificates start this far in the past, so a peer whose clock is a little behind accepts them.
_BACKDATE = dt.timedelta(hours=1)
#: RFC 5280 Appendix A: ``ub-common-name INTEGER ::= 64``.
_MAX_COMMON_NAME = 64
#: RFC 1034 3.5 preferred name syntax (RFC 5280 4.2.1.6), one label, digits allowed first.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_ORGANIZATION = "wirelab lab"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _new_key(kind: KeyKind, rsa_bits: int) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        try:
            return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        except ValueError as exc:
            raise ConfigError(f"cannot make a {rsa_bits}-bit RSA key: {exc}") from exc
    raise ConfigError(f"unknown key kind {kind!r} (expected 'ec' or 'rsa')")


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _same_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def _load_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"unsupported key type {type(key).__name__}")
    return key


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a new file renamed into place, created with ``mode``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _private_dir(directory: Path) -> Path:
    return private_dir(directory)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (other processes may start the lab too)."""
    with open(directory / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _split_names(
    hostnames: Sequence[str], ip_addresses: Sequence[str]
) -> tuple[list[str], list[IPAddress]]:
    """Normalise host names (lower case, A-labels) and move address literals to the IP list."""
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    dns: list[str] = []
    ips: list[IPAddress] = []
    for text in ip_addresses:
        try:
            ip = ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError as exc:
            raise ConfigError(f"not an IP address: {text!r}") from exc
        if ip not in ips:
            ips.append(ip)
    for text in hostnames:
        name = text.strip().rstrip(".").lower()
        try:
            ip = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:  # an address literal among the host names: it belongs in an iPAddress entry
            if ip not in ips:
                ips.append(ip)
            continue
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ConfigError(f"not a valid host name: {text!r}") from exc
        labels = name.split(".")
        if labels[0] == "*" and len(labels) > 2:  # a wildcard covers one label (RFC 6125 6.4.3)
            labels = labels[1:]
        if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise ConfigError(f"not a valid host name: {text!r}")
        if name not in dns:
            dns.append(name)
    if not dns and not ips:
        raise ConfigError("a certificate needs at least one host name or IP address")
    return dns, ips


def _san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return [*dns, *ips]


@dataclass(frozen=True)
class IssuedCert:
    """A certificate, its private key and the chain above it, all PEM.

    Attributes:
        cert_pem: the leaf certificate.
        key_pem: its private key (PKCS#8, unencrypted: lab use only).
        chain_pem: the certificates above the leaf, up to and including the CA.
    """

    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf as a ``cryptography`` certificate object."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def names(self) -> list[str]:
        """The subjectAltName entries: host names, then IP addresses (as text)."""
        return _san_names(self.certificate)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.pem`` (leaf + chain) and ``stem-key.pem`` (mode 0600) in ``directory``.

        Returns:
            The certificate path and the key path.
        """
        if not stem or "/" in stem or stem.startswith("."):
            raise ConfigError(f"not a usable file stem: {stem!r}")
        try:  # a new directory is private; an existing one is the caller's choice
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {directory}: {exc.strerror or exc}") from exc
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
        _write_atomic(key_path, self.key_pem, 0o600)
        _write_atomic(cert_path, self.cert_pem + self.chain_pem, 0o644)
        return cert_path, key_path

    def load_into(self, ctx: ssl.SSLContext) -> None:
        """Load this certificate, its chain and key into ``ctx`` (through private temp files)."""
        with tempfile.TemporaryDirectory(prefix="wirelab-cert-") as tmp:  # mode 0700
            cert_path, key_path = self.write(Path(tmp), "cert")
            ctx.load_cert_chain(cert_path, key_path)


class LabCA:
    """A certificate authority kept in one directory; see the module docstring for the files.

    Make one with :meth:`load_or_create` (normal use) or :meth:`create` (always a new one). An
    untrusted CA, for tests that must fail, is simply another ``LabCA`` in another directory.
    """

    def __init__(self, directory: Path, certificate: x509.Certificate, key: PrivateKey) -> None:
        self._directory = directory
        self._certificate = certificate
        self._key = key
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        self._ski = ski.value

    def __repr__(self) -> str:
        return f"LabCA({str(self._directory)!r}, serial={self._certificate.serial_number:x})"

    @property
    def directory(self) -> Path:
        """The directory holding the CA files."""
        return self._directory

    @property
    def cert_path(self) -> Path:
        """``ca.pem``: give this to clients as their ``cafile``."""
        return self._directory / "ca.pem"

    @property
    def key_path(self) -> Path:
        """``ca-key.pem``: the CA's private key (mode 0600)."""
        return self._directory / "ca-key.pem"

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return _cert_pem(self._certificate)

    @property
    def certificate(self) -> x509.Certificate:
        """The CA certificate as a ``cryptography`` object."""
        return self._certificate

    @classmethod
    def load_or_create(
        cls, directory: Path, *, name: str = "wirelab lab CA", key: KeyKind = "ec"
    ) -> LabCA:
        """Load the CA in ``directory``, or make one if it is missing, unusable or expiring.

        ``name`` and ``key`` apply only when a new CA is made.
        """
        directory = _private_dir(Path(directory))
        with _locked(directory):
            try:
                certificate = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
                private_key = _load_key((directory / "ca-key.pem").read_bytes())
            except FileNotFoundError:
                problem: str | None = "no CA yet"
            except (OSError, ValueError, TypeError) as exc:
                problem = f"unreadable ({exc})"
            else:
                problem = _ca_problem(certificate, private_key)
                if problem is None:
                    return cls(directory, certificate, private_key)
            log.info("making a new lab CA in %s: %s", directory, problem)
            return cls._create_locked(directory, name, _new_key(key, 3072), None, None)

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        name: str = "wirelab lab CA",
        key: KeyKind = "ec",
        rsa_bits: int = 3072,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> LabCA:
        """Make a new CA in ``directory``, replacing any CA there.

        ``not_before``/``not_after`` default to an hour ago and :data:`CA_VALIDITY` from now;
        pass them to make a deliberately broken CA (expired, not yet valid).
        """
        directory = _private_dir(Path(directory))
        with _locked(directory):
            private_key = _new_key(key, rsa_bits)
            return cls._create_locked(directory, name, private_key, not_before, not_after)

    @classmethod
    def _create_locked(
        cls,
        directory: Path,
        name: str,
        private_key: PrivateKey,
        not_before: dt.datetime | None,
        not_after: dt.datetime | None,
    ) -> LabCA:
        if not 0 < len(name) <= _MAX_COMMON_NAME:
            raise ConfigError(f"a CA name needs 1 to {_MAX_COMMON_NAME} characters: {name!r}")
        now, subject = _now(), _name(name)
        certificate = _sign(
            subject,
            private_key.public_key(),
            (subject, private_key, None),
            (_utc(not_before or now - _BACKDATE), _utc(not_after or now + CA_VALIDITY)),
            [
                (x509.BasicConstraints(ca=True, path_length=0), True),
                (_key_usage(cert_sign=True), True),
            ],
        )
        _write_atomic(directory / "ca-key.pem", _key_pem(private_key), 0o600)
        _write_atomic(directory / "ca.pem", _cert_pem(certificate), 0o644)
        return cls(directory, certificate, private_key)

    def issue(
        self,
        hostnames: Sequence[str],
        *,
        ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
        client: bool = False,
        days: int = 825,
        key: KeyKind = "ec",
        rsa_bits: int = 2048,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        common_name: str | None = None,
    ) -> IssuedCert:
        """Issue a leaf certificate for ``hostnames`` and ``ip_addresses``.

        Args:
            hostnames: DNS names for the subjectAltName (``*.`` wildcards allowed); address
                literals given here are moved to the iPAddress entries.
            ip_addresses: addresses for the subjectAltName (loopback by default).
            client: issue a client certificate (extendedKeyUsage clientAuth, not serverAuth).
            days: lifetime when ``not_after`` is not given (never beyond the CA's own expiry).
            key: ``"ec"`` (P-256) or ``"rsa"``.
            rsa_bits: RSA key size.
            not_before: start of validity (default: an hour ago).
            not_after: end of validity; may lie in the past, for deliberately broken
                certificates (the CA does not stop you).
            common_name: subject CN (default: the first name, if it fits in 64 characters).

        Raises:
            ConfigError: no names, an invalid name or address, or bad key parameters.
        """
        dns, ips = _split_names(hostnames, ip_addresses)
        now = _now()
        if not_after is None:
            if days < 1:
                raise ConfigError(f"days must be at least 1, not {days}")
            not_after = min(now + dt.timedelta(days=days), self._certificate.not_valid_after_utc)
        if common_name is None:
            first = dns[0] if dns else str(ips[0])
            common_name = first if len(first) <= _MAX_COMMON_NAME else None
        elif not 0 < len(common_name) <= _MAX_COMMON_NAME:
            raise ConfigError(f"a common name needs 1 to {_MAX_COMMON_NAME} characters")
        san = [*map(x509.DNSName, dns), *map(x509.IPAddress, ips)]
        leaf_key = _new_key(key, rsa_bits)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        certificate = _sign(
            _name(common_name),
            leaf_key.public_key(),
            (self._certificate.subject, self._key, self._ski),
            (_utc(not_before or now - _BACKDATE), _utc(not_after)),
            [
                (x509.SubjectAlternativeName(san), False),
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (_key_usage(encipher=isinstance(leaf_key, rsa.RSAPrivateKey)), True),
                (x509.ExtendedKeyUsage([usage]), False),
            ],
        )
        return IssuedCert(_cert_pem(certificate), _key_pem(leaf_key), self.cert_pem)

    def server_cert_for(
        self,
        hostnames: Sequence[str],
        directory: Path | None = None,
        *,
        ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    ) -> tuple[Path, Path]:
        """Return (cert path, key path) of a server certificate, cached in ``directory/certs``.

        A cached certificate is reused while it is signed by this CA, names exactly these
        hosts and addresses, and has more than :data:`RENEW_BEFORE` left; otherwise a new one
        is issued. The cache is keyed by the sorted, normalised names.
        """
        dns, ips = _split_names(hostnames, ip_addresses)
        wanted = sorted(dns) + sorted(str(ip) for ip in ips)
        certs = _private_dir(
            Path(directory if directory is not None else self._directory) / "certs"
        )
        digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
        slug = re.sub(r"[^a-z0-9.-]", "_", wanted[0])[:40]
        stem = f"{slug}-{digest}"
        cert_path, key_path = certs / f"{stem}.pem", certs / f"{stem}-key.pem"
        with _locked(certs):
            if self._cached_ok(cert_path, key_path, set(wanted)):
                return cert_path, key_path
            log.info("issuing a lab server certificate for %s", ", ".join(wanted))
            return self.issue(dns, ip_addresses=[str(ip) for ip in ips]).write(certs, stem)

    def _cached_ok(self, cert_path: Path, key_path: Path, wanted: set[str]) -> bool:
        try:
            chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
            leaf_key = _load_key(key_path.read_bytes())
            chain[0].verify_directly_issued_by(self._certificate)
        except (OSError, ValueError, TypeError, IndexError, InvalidSignature):
            # missing, unreadable, or not signed by this CA: issue a new one
            return False
        leaf, now = chain[0], _now()
        return (
            chain[1:] == [self._certificate]
            and _same_key(leaf, leaf_key)
            and leaf.not_valid_before_utc <= now
            and leaf.not_valid_after_utc - now > RENEW_BEFORE
            and set(_san_names(leaf)) == wanted
        )


def _name(common_name: str | None) -> x509.Name:
    """A subject: our organisation (so it is never empty), then the common name if any."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION)]
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    issuer: tuple[x509.Name, PrivateKey, x509.SubjectKeyIdentifier | None],
    validity: tuple[dt.datetime, dt.datetime],
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """Build and sign a v3 certificate; SKI and AKI are added (issuer SKI None: self-signed)."""
    issuer_name, signer, issuer_ski = issuer
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski or ski)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
    )
    for extension, critical in [*extensions, (ski, False), (aki, False)]:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _key_usage(*, cert_sign: bool = False, encipher: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_problem(certificate: x509.Certificate, key: PrivateKey) -> str | None:
    """Why a loaded CA cannot be used (``None`` when it can)."""
    if not _same_key(certificate, key):
        return "the key does not match the certificate"
    if certificate.version is not x509.Version.v3:
        return "not an X.509 v3 certificate"
    extensions = certificate.extensions
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints)
        usage = extensions.get_extension_for_class(x509.KeyUsage)
        extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        return f"not RFC 5280-conformant ({exc})"
    if not (constraints.critical and constraints.value.ca):
        return "basicConstraints is not a critical CA:TRUE (RFC 5280 4.2.1.9)"
    if not (usage.critical and usage.value.key_cert_sign):
        return "keyUsage is not a critical keyCertSign (RFC 5280 4.2.1.3)"
    now = _now()
    if certificate.not_valid_before_utc > now:
        return "not valid yet"
    if certificate.not_valid_after_utc - now < RENEW_BEFORE:
        return "expired or about to expire"
    return None
