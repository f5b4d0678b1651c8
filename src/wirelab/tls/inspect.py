"""The TLS inspector (RFC 8446, RFC 5246, RFC 5280, RFC 6125): what a server's TLS looks like.

:func:`inspect` makes one *verifying* handshake (optionally after STARTTLS) and reports the
negotiated version and cipher, the chain (subject, names, issuer, validity, key, signature
algorithm), whether the names match, and whether the chain verifies and, if not, why, in
one plain line (:mod:`wirelab.tls.verdict`). With ``versions=True`` it also asks which of
TLS 1.0-1.3 the server accepts.

How a failure is diagnosed without turning verification off: OpenSSL keeps the chain the
peer sent even when verification fails, so the inspector reads it from the failed handshake
itself (``get_unverified_chain``). The session parameters (version, cipher) exist only after
a completed handshake, so for an untrusted server they are shown only with ``insecure=True``:
a second handshake with verification off, which the inspector completes and closes at once,
never sending a byte of application data. That is the only unverified handshake in wirelab.

The version probes offer exactly one version each (minimum = maximum). OpenSSL 3 refuses to
offer TLS 1.0 and 1.1 at security level 1 or above, so the probes for those two run at level
0: they only ask the question (verification stays on, no data is sent). A version the local
OpenSSL cannot offer at all is reported as such, not as refused by the server.
"""

from __future__ import annotations

import logging
import os
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any

from wirelab.errors import WirelabError
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT
from wirelab.tls.certinfo import CertInfo, describe_chain
from wirelab.tls.client import handshake_error, make_client_context, negotiate_starttls, peer_chain
from wirelab.tls.names import match_name
from wirelab.tls.verdict import Verdict, findings, verdict

__all__ = ["TLS_VERSIONS", "Inspection", "VersionResult", "inspect", "probe_versions"]

log = logging.getLogger(__name__)

#: The versions the probe asks about, oldest first: (label, TLSVersion name).
TLS_VERSIONS: tuple[tuple[str, str], ...] = (
    ("TLSv1.0", "TLSv1"),
    ("TLSv1.1", "TLSv1_1"),
    ("TLSv1.2", "TLSv1_2"),
    ("TLSv1.3", "TLSv1_3"),
)

ACCEPTED = "accepted"
REFUSED = "refused"
LOCAL = "not supported by the local OpenSSL"

# Reasons that mean "the server would not speak this version".
_REFUSED_REASONS = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "WRONG_SSL_VERSION",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    "NO_SHARED_CIPHER",
}
# Reasons that mean "this client cannot even offer it".
_LOCAL_REASONS = {
    "NO_PROTOCOLS_AVAILABLE",
    "NO_CIPHERS_AVAILABLE",
    "NO_SUITABLE_SIGNATURE_ALGORITHM",
}


@dataclass(frozen=True)
class VersionResult:
    """Whether the server accepted one TLS version.

    Attributes:
        version: ``TLSv1.0`` ... ``TLSv1.3``.
        status: ``accepted``, ``refused``, ``not supported by the local OpenSSL`` or ``error``.
        detail: what was seen (the alert, the error).
    """

    version: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Inspection:
    """Everything :func:`inspect` learnt about one TLS server."""

    host: str
    port: int
    peer: str
    servername: str
    starttls: str | None
    trust: str
    verdict: Verdict
    findings: list[str]
    chain: tuple[CertInfo, ...]
    chain_verified: bool
    name_match: str | None
    version: str | None = None
    cipher: str | None = None
    cipher_bits: int | None = None
    compression: str | None = None
    insecure_session: bool = False
    versions: tuple[VersionResult, ...] = field(default_factory=tuple)

    @property
    def trusted(self) -> bool:
        """The chain verified and the name matched."""
        return self.verdict.ok

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "host": self.host,
            "port": self.port,
            "peer": self.peer,
            "servername": self.servername,
            "starttls": self.starttls,
            "trust": self.trust,
            "trusted": self.verdict.ok,
            "problem": self.verdict.problem,
            "verdict": self.verdict.line,
            "findings": self.findings,
            "name_match": self.name_match,
            "session": {
                "version": self.version,
                "cipher": self.cipher,
                "cipher_bits": self.cipher_bits,
                "compression": self.compression,
                "unverified": self.insecure_session,
            },
            "chain_verified": self.chain_verified,
            "chain": [c.to_json() for c in self.chain],
            "versions": {v.version: v.status for v in self.versions} if self.versions else None,
        }


def _trust(cafile: str | os.PathLike[str] | None, lab_cafile: str | os.PathLike[str] | None) -> str:
    if cafile is not None:
        return f"CA file {os.fspath(cafile)}"
    if lab_cafile is not None:
        return "lab CA and system store"
    return "system store"


def _attempt(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    servername: str,
    starttls: str | None,
    timeout: float,
) -> tuple[ssl.SSLSocket, str, BaseException | None]:
    """Connect (and STARTTLS); run one handshake. The caller closes the socket it gets."""
    sock = connect_tcp(host, port, timeout=timeout)
    peer = format_address(sock.getpeername())
    try:
        if starttls:
            negotiate_starttls(sock, starttls, peer=peer, timeout=timeout)
        tls = ctx.wrap_socket(
            sock, server_hostname=servername.strip("[]"), do_handshake_on_connect=False
        )
    except BaseException:
        sock.close()
        raise
    tls.settimeout(timeout)
    try:
        tls.do_handshake()
    except (OSError, ValueError) as exc:
        return tls, peer, exc
    return tls, peer, None


def _session(tls: ssl.SSLSocket) -> tuple[str | None, str | None, int | None, str | None]:
    cipher = tls.cipher()
    return (
        tls.version(),
        cipher[0] if cipher else None,
        cipher[2] if cipher else None,
        tls.compression(),
    )


def inspect(
    host: str,
    port: int,
    *,
    servername: str | None = None,
    starttls: str | None = None,
    cafile: str | os.PathLike[str] | None = None,
    lab_cafile: str | os.PathLike[str] | None = None,
    versions: bool = False,
    insecure: bool = False,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Inspection:
    """Inspect the TLS server at ``host``:``port``.

    Args:
        host: name or address to connect to.
        port: the port.
        servername: the name to check the certificate against and send as SNI (default:
            ``host``).
        starttls: ``smtp``, ``pop3``, ``imap`` or ``ftp`` to upgrade a plaintext port first.
        cafile: trust only this PEM file.
        lab_cafile: with no ``cafile``, trust this file as well as the system store (the
            running lab's CA).
        versions: also probe TLS 1.0, 1.1, 1.2 and 1.3 one by one.
        insecure: when verification fails, make a second, unverified handshake to show the
            session parameters (it sends no data). The verdict still comes from the verified
            handshake.
        timeout: seconds for each connect, STARTTLS dialogue and handshake.

    Raises:
        TransportError: no connection, no TLS at all, a handshake failure other than
            certificate verification (no common version or cipher ...), a timeout.
        RemoteProtocolError: the STARTTLS dialogue failed.
    """
    name = servername or host
    trust = _trust(cafile, lab_cafile)
    ctx = make_client_context(cafile=cafile, extra_cafile=lab_cafile)
    tls, peer, error = _attempt(host, port, ctx, name, starttls, timeout)
    with tls:
        if error is not None and not isinstance(error, ssl.SSLCertVerificationError):
            raise handshake_error(error, peer, timeout) from error
        ders = peer_chain(tls, verified=error is None)
        session = _session(tls) if error is None else (None, None, None, None)
    chain = describe_chain(ders)
    if isinstance(error, ssl.SSLCertVerificationError):
        judged = verdict(error.verify_code, str(error.verify_message or ""), chain, name, trust)
    else:
        judged = verdict(None, "", chain, name, trust)
    leaf = chain[0] if chain else None
    matched = match_name(name, leaf.dns_names, leaf.ip_addresses) if leaf else None
    insecure_session = False
    if error is not None and insecure:
        log.info("inspecting %s again without verification (insecure); no data is sent", peer)
        session = _insecure_session(host, port, name, starttls, timeout)
        insecure_session = True
    probed = (
        probe_versions(
            host,
            port,
            servername=name,
            starttls=starttls,
            cafile=cafile,
            lab_cafile=lab_cafile,
            timeout=timeout,
        )
        if versions
        else ()
    )
    return Inspection(
        host=host,
        port=port,
        peer=peer,
        servername=name,
        starttls=starttls,
        trust=trust,
        verdict=judged,
        findings=findings(chain, name),
        chain=chain,
        chain_verified=error is None,
        name_match=matched,
        version=session[0],
        cipher=session[1],
        cipher_bits=session[2],
        compression=session[3],
        insecure_session=insecure_session,
        versions=probed,
    )


def _insecure_session(
    host: str, port: int, name: str, starttls: str | None, timeout: float
) -> tuple[str | None, str | None, int | None, str | None]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # explicit --insecure, inspection only: no data is sent
    tls, peer, error = _attempt(host, port, ctx, name, starttls, timeout)
    with tls:
        if error is not None:
            raise handshake_error(error, peer, timeout) from error
        return _session(tls)


def _probe_context(
    version: ssl.TLSVersion,
    cafile: str | os.PathLike[str] | None,
    lab_cafile: str | os.PathLike[str] | None,
) -> ssl.SSLContext:
    ctx = make_client_context(cafile=cafile, extra_cafile=lab_cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0/1.1 warns
        if version < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so OpenSSL 3 may offer them at all
            ctx.minimum_version = version
            ctx.maximum_version = version
        else:
            ctx.maximum_version = version
            ctx.minimum_version = version
    return ctx


def _probe_one(
    label: str,
    attr: str,
    host: str,
    port: int,
    name: str,
    starttls: str | None,
    cafile: str | os.PathLike[str] | None,
    lab_cafile: str | os.PathLike[str] | None,
    timeout: float,
) -> VersionResult:
    if not getattr(ssl, f"HAS_{attr}", False):
        return VersionResult(label, LOCAL, f"ssl.HAS_{attr} is False")
    version = getattr(ssl.TLSVersion, attr)
    try:
        ctx = _probe_context(version, cafile, lab_cafile)
    except (ValueError, ssl.SSLError) as exc:
        return VersionResult(label, LOCAL, str(exc))
    tls, peer, error = _attempt(host, port, ctx, name, starttls, timeout)
    with tls:
        if error is None:
            return VersionResult(label, ACCEPTED, tls.version() or label)
    if isinstance(error, ssl.SSLCertVerificationError):
        # The certificate arrives after the server chose the version: it accepted it.
        return VersionResult(label, ACCEPTED, f"(certificate not trusted: {error.verify_message})")
    reason = getattr(error, "reason", None) or ""
    if reason in _LOCAL_REASONS:
        return VersionResult(label, LOCAL, reason)
    if reason in _REFUSED_REASONS or isinstance(error, ssl.SSLEOFError | ConnectionError):
        return VersionResult(label, REFUSED, reason or type(error).__name__)
    return VersionResult(label, "error", str(handshake_error(error, peer, timeout)))


def probe_versions(
    host: str,
    port: int,
    *,
    servername: str | None = None,
    starttls: str | None = None,
    cafile: str | os.PathLike[str] | None = None,
    lab_cafile: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> tuple[VersionResult, ...]:
    """Ask the server about each of TLS 1.0-1.3 in turn (one connection each).

    Raises:
        TransportError: the server could not be reached at all.
    """
    name = servername or host
    results = []
    for label, attr in TLS_VERSIONS:
        try:
            results.append(
                _probe_one(label, attr, host, port, name, starttls, cafile, lab_cafile, timeout)
            )
        except WirelabError as exc:
            results.append(VersionResult(label, "error", str(exc)))
    return tuple(results)
