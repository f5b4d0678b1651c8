"""The TLS version probes (RFC 8446, RFC 5246, RFC 8996): which of TLS 1.0-1.3 a server accepts.

Each probe offers exactly one version (minimum = maximum) on a connection of its own and
verifies the certificate as every inspection does. OpenSSL 3 refuses to offer TLS 1.0 and
1.1 at security level 1 or above, so the probes for those two run at level 0: they only ask
the question (verification stays on, no data is sent). A version the local OpenSSL cannot
offer at all is reported as such, not as refused by the server.

This module owns the probes, their results (:class:`VersionResult`), the alert reasons that
mean "refused" or "cannot offer", and what a set of results says when the verifying
handshake of :func:`wirelab.tls.inspect.inspect` found no common ground with the server
(:func:`no_common_ground`, :func:`probe_summary`, :func:`version_verdict`).
"""

from __future__ import annotations

import ssl
import time
import warnings
from dataclasses import dataclass
from typing import Any

from wirelab.errors import WirelabError
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT
from wirelab.tls._handshake import ClientSide, PathArg, attempt, closing
from wirelab.tls.client import handshake_error, peer_chain
from wirelab.tls.verdict import Verdict

__all__ = [
    "ACCEPTED",
    "ERROR",
    "LEGACY_VERSIONS",
    "LOCAL",
    "REFUSED",
    "TLS_VERSIONS",
    "Seen",
    "VersionResult",
    "no_common_ground",
    "probe_all",
    "probe_summary",
    "probe_versions",
    "version_verdict",
]

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
ERROR = "error"

#: The versions RFC 8996 deprecates; their probes run at OpenSSL security level 0.
LEGACY_VERSIONS = ("TLSv1.0", "TLSv1.1")

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
# A verifying handshake that failed for one of these reasons (the server and this client
# share no version or cipher) is followed by the version probes: they say what the server
# does speak.
_NO_COMMON_GROUND = _REFUSED_REASONS
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
        detail: what was seen (the version and cipher, the alert, the error).
        relaxed: the probe ran at OpenSSL security level 0 (TLS 1.0 and 1.1 only); it still
            verified the certificate and sent no data.
    """

    version: str
    status: str
    detail: str = ""
    relaxed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "version": self.version,
            "status": self.status,
            "detail": self.detail,
            "relaxed_security_level": self.relaxed,
        }


def no_common_ground(error: BaseException | None) -> ssl.SSLError | None:
    """``error`` if it says the server and this client share no version or cipher."""
    if isinstance(error, ssl.SSLCertVerificationError) or not isinstance(error, ssl.SSLError):
        return None
    return error if getattr(error, "reason", None) in _NO_COMMON_GROUND else None


def _listed(labels: list[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} {conjunction} {labels[-1]}"


def probe_summary(results: tuple[VersionResult, ...]) -> str:
    """What the probes saw when none got through, for the error message."""
    refused = [r.version for r in results if r.status == REFUSED]
    local = [r.version for r in results if r.status == LOCAL]
    failed = [r.version for r in results if r.status == ERROR]
    parts = []
    if refused:
        parts.append(f"offered one at a time, {_listed(refused)} were refused")
    if local:
        parts.append(f"this OpenSSL cannot offer {_listed(local, 'or')}")
    if failed:
        parts.append(f"{_listed(failed)} could not be probed")
    return "; ".join(parts) if parts else "no version could be probed"


def version_verdict(accepted: list[str], reason: str) -> Verdict:
    """The verdict when the verifying handshake failed yet some version probe got through."""
    if all(label in LEGACY_VERSIONS for label in accepted):
        them = "it" if len(accepted) == 1 else "them"
        return Verdict(
            False,
            "old-tls",
            f"old TLS only: the server offers only {_listed(accepted)}, which RFC 8996 "
            f"deprecates; a secure client refuses {them}",
        )
    return Verdict(
        False,
        "handshake-failed",
        f"handshake failed: {reason}, although the server accepted {_listed(accepted)} "
        "when offered alone",
    )


def _probe_context(version: ssl.TLSVersion, side: ClientSide) -> ssl.SSLContext:
    ctx = side.context()
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


@dataclass(frozen=True)
class Seen:
    """The chain one probe received, and the probe's own verification of it."""

    ders: list[bytes]
    verify_code: int | None
    verify_message: str


def _probe_one(
    label: str,
    attr: str,
    host: str,
    port: int,
    name: str,
    starttls: str | None,
    side: ClientSide,
    timeout: float,
) -> tuple[VersionResult, Seen | None]:
    if not getattr(ssl, f"HAS_{attr}", False):
        return VersionResult(label, LOCAL, f"ssl.HAS_{attr} is False"), None
    version = getattr(ssl.TLSVersion, attr)
    relaxed = label in LEGACY_VERSIONS
    try:
        ctx = _probe_context(version, side)
    except (ValueError, ssl.SSLError) as exc:
        return VersionResult(label, LOCAL, str(exc)), None
    tls, peer, error = attempt(host, port, ctx, name, starttls, timeout)
    with closing(tls):
        if error is None:
            cipher = tls.cipher()
            got = f"{label}, {cipher[0]}" if cipher else label
            seen = Seen(peer_chain(tls, verified=True), None, "")
            return VersionResult(label, ACCEPTED, got, relaxed), seen
        if isinstance(error, ssl.SSLCertVerificationError):
            # The certificate arrives after the server chose the version: it accepted it.
            message = str(error.verify_message or "")
            seen = Seen(peer_chain(tls, verified=False), error.verify_code, message)
            detail = f"(certificate not trusted: {message})"
            return VersionResult(label, ACCEPTED, detail, relaxed), seen
    reason = getattr(error, "reason", None) or ""
    if reason in _LOCAL_REASONS:
        return VersionResult(label, LOCAL, reason, relaxed), None
    if reason in _REFUSED_REASONS or isinstance(error, ssl.SSLEOFError | ConnectionError):
        return VersionResult(label, REFUSED, reason or type(error).__name__, relaxed), None
    detail = str(handshake_error(error, peer, timeout))
    return VersionResult(label, ERROR, detail, relaxed), None


def probe_all(
    host: str,
    port: int,
    name: str,
    starttls: str | None,
    side: ClientSide,
    timeout: float,
    deadline: float | None,
) -> list[tuple[VersionResult, Seen | None]]:
    """Probe each version in turn; with a ``deadline`` (monotonic), all within it."""
    probes: list[tuple[VersionResult, Seen | None]] = []
    for label, attr in TLS_VERSIONS:
        allowed = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        if allowed <= 0:
            probes.append((VersionResult(label, ERROR, "not probed: out of time"), None))
            continue
        try:
            probes.append(_probe_one(label, attr, host, port, name, starttls, side, allowed))
        except WirelabError as exc:
            probes.append((VersionResult(label, ERROR, str(exc)), None))
    return probes


def probe_versions(
    host: str,
    port: int,
    *,
    servername: str | None = None,
    starttls: str | None = None,
    cafile: PathArg = None,
    lab_cafile: PathArg = None,
    certfile: PathArg = None,
    keyfile: PathArg = None,
    strict_x509: bool = True,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> tuple[VersionResult, ...]:
    """Ask the server about each of TLS 1.0-1.3 in turn (one connection each).

    Each probe offers exactly one version and verifies the certificate; the TLS 1.0 and 1.1
    probes run at OpenSSL security level 0 (``relaxed``). None sends application data.
    Failures are reported per version, never raised.
    """
    name = servername or host
    side = ClientSide(cafile, lab_cafile, certfile, keyfile, strict_x509)
    probes = probe_all(host, port, name, starttls, side, timeout, None)
    return tuple(result for result, _ in probes)
