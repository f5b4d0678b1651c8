"""The TLS inspector (RFC 8446, RFC 5246, RFC 5280, RFC 6125): what a server's TLS looks like.

:func:`inspect` makes one *verifying* handshake (optionally after STARTTLS) and reports the
negotiated version and cipher, the chain (subject, names, issuer, validity, key, signature
algorithm), whether the names match, and whether the chain verifies and, if not, why, in
one plain line (:mod:`wirelab.tls.verdict`). With ``versions=True`` it also asks which of
TLS 1.0-1.3 the server accepts (:mod:`wirelab.tls.versions`).

How a failure is diagnosed without turning verification off: OpenSSL keeps the chain the
peer sent even when verification fails, so the inspector reads it from the failed handshake
itself (``get_unverified_chain``). The session parameters (version, cipher) exist only after
a completed handshake, so for an untrusted server they are shown only with ``insecure=True``:
a second handshake with verification off, which the inspector completes and closes at once,
never sending a byte of application data. That is the only unverified handshake in wirelab.

When the verifying handshake fails because the server and this client share no version or
cipher (a server that speaks only TLS 1.0, say), the inspector still runs the version probes
(within ``timeout`` seconds in all, unless ``versions=True`` asked for them anyway), takes the
chain from the newest probe that got one, and says in one line why a secure client cannot
talk to the server: ``old TLS only: the server offers only TLSv1.0, which RFC 8996
deprecates; a secure client refuses it``. If no probe gets through either, the handshake
error is raised as before, with what the probes saw.

The connection and the handshake themselves, shared with the probes, are
:mod:`wirelab.tls._handshake`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from wirelab.errors import TLSError
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT
from wirelab.net.tlsctx import describe_tls_error
from wirelab.tls._handshake import ClientSide, PathArg, Session, attempt, closing, session_params
from wirelab.tls.certinfo import CertInfo, describe_chain
from wirelab.tls.client import handshake_error, peer_chain
from wirelab.tls.names import match_name
from wirelab.tls.verdict import Verdict, findings, verdict
from wirelab.tls.versions import (
    ACCEPTED,
    TLS_VERSIONS,
    VersionResult,
    no_common_ground,
    probe_all,
    probe_summary,
    probe_versions,
    version_verdict,
)

__all__ = [
    "TLS_VERSIONS",
    "ClientSide",
    "Inspection",
    "VersionResult",
    "inspect",
    "probe_versions",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inspection:
    """Everything :func:`inspect` learnt about one TLS server.

    When the verifying handshake failed for want of a common version or cipher,
    ``handshake_error`` says so in one line, ``verdict`` says why (problem ``old-tls`` when
    the server speaks only TLS 1.0/1.1, ``handshake-failed`` otherwise), ``chain`` comes from
    the probe named by ``chain_source`` and ``probe_verdict`` is that probe's own check of it.
    """

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
    handshake_error: str | None = None
    chain_source: str | None = None
    probe_verdict: Verdict | None = None
    client_certificate: str = "not requested"

    @property
    def trusted(self) -> bool:
        """The chain verified and the name matched."""
        return self.verdict.ok

    @property
    def accepted_versions(self) -> tuple[str, ...]:
        """The versions the probes found accepted (empty when not probed)."""
        return tuple(v.version for v in self.versions if v.status == ACCEPTED)

    @property
    def chain_relaxed(self) -> bool:
        """The chain came from a probe at OpenSSL security level 0."""
        return any(v.relaxed for v in self.versions if v.version == self.chain_source)

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
            "accepted_versions": list(self.accepted_versions) if self.versions else None,
            "version_probes": [v.to_json() for v in self.versions] if self.versions else None,
            "handshake_error": self.handshake_error,
            "client_certificate": self.client_certificate,
            "chain_source": self.chain_source,
            "probe_verdict": (
                {
                    "trusted": self.probe_verdict.ok,
                    "problem": self.probe_verdict.problem,
                    "verdict": self.probe_verdict.line,
                }
                if self.probe_verdict is not None
                else None
            ),
        }


def _trust(cafile: PathArg, lab_cafile: PathArg, strict_x509: bool = True) -> str:
    relaxed = " (not strict X.509)" if not strict_x509 else ""
    if cafile is not None:
        return f"CA file {os.fspath(cafile)}{relaxed}"
    if lab_cafile is not None:
        return f"lab CA and system store{relaxed}"
    return f"system store{relaxed}"


#: TLS handshake message type of a CertificateRequest (RFC 8446 §4.3.2, RFC 5246 §7.4.4).
_CERTIFICATE_REQUEST = 13


def _watch_certificate_request(ctx: ssl.SSLContext) -> list[bool]:
    """Note whether the server sends a CertificateRequest (``[True]`` once it has).

    Uses the ``ssl`` module's message callback (``SSLContext._msg_callback``, present since
    Python 3.8, the hook behind OpenSSL's ``SSL_CTX_set_msg_callback``); without it the list
    stays empty and only a refusal tells that a certificate was wanted.
    """
    seen: list[bool] = []

    def callback(
        conn: object, direction: str, version: object, content_type: int, msg_type: int, data: bytes
    ) -> None:
        handshake = content_type == 22  # an inner handshake message, not a record header
        if direction == "read" and handshake and msg_type == _CERTIFICATE_REQUEST and not seen:
            seen.append(True)

    with contextlib.suppress(AttributeError, TypeError):
        ctx._msg_callback = callback  # type: ignore[attr-defined]
    return seen


#: Reasons a client-certificate refusal arrives with (from the server, as an alert).
_CLIENT_CERT_REFUSALS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
}

#: Seconds a TLS 1.3 inspection waits, after a handshake in which the server asked for a
#: client certificate, for the server's verdict on it (TLS 1.3 sends it after the handshake).
CLIENT_CERT_VERDICT_WAIT = 1.0


def _client_cert_refusal(
    error: BaseException, requested: bool, presented: bool, peer: str
) -> TLSError | None:
    """The one-line error when the server refused us for our client certificate, else None."""
    reason = getattr(error, "reason", None)
    if not isinstance(error, ssl.SSLError) or reason not in _CLIENT_CERT_REFUSALS:
        return None
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE" and not requested:
        return None  # a plain handshake failure (no cipher in common ...), not about us
    if presented:
        line = describe_tls_error(error)
        if reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"):
            line = "peer rejected our client certificate"
        return TLSError(f"TLS with {peer} failed: {line}")
    return TLSError(f"TLS with {peer} failed: peer requires a client certificate")


def _await_client_cert_verdict(tls: ssl.SSLSocket, timeout: float) -> BaseException | None:
    """TLS 1.3: read briefly for the alert a server sends when it refuses our certificate."""
    tls.settimeout(min(timeout, CLIENT_CERT_VERDICT_WAIT))
    try:
        tls.recv(1)  # a greeting byte, an EOF or a quiet server all mean "not refused"
    except ssl.SSLError as exc:
        return exc
    except OSError:  # TimeoutError, a reset: no verdict to report
        pass
    return None


def inspect(
    host: str,
    port: int,
    *,
    servername: str | None = None,
    starttls: str | None = None,
    cafile: PathArg = None,
    lab_cafile: PathArg = None,
    certfile: PathArg = None,
    keyfile: PathArg = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    strict_x509: bool = True,
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
        certfile: a client certificate to present if the server asks for one (PEM).
        keyfile: its key, when not in ``certfile``.
        minimum_version: the oldest version the verifying handshake offers (1.2 or 1.3).
        maximum_version: the newest; equal to ``minimum_version`` pins one, so that
            ``ciphers`` decides the suite (TLS 1.3 suites are not chosen by cipher strings).
        ciphers: an OpenSSL cipher string for TLS 1.2, as :func:`wirelab.tls.client.fetch`
            takes it.
        strict_x509: ``False`` is the explicit opt-out of RFC 5280 strictness (older CAs);
            the chain and the name are still verified.
        versions: also probe TLS 1.0, 1.1, 1.2 and 1.3 one by one.
        insecure: when verification fails, make a second, unverified handshake to show the
            session parameters (it sends no data). The verdict still comes from the verified
            handshake, so nothing is ever accepted silently.
        timeout: seconds for each connect, STARTTLS dialogue and handshake. When the server
            shares no version or cipher with this client and ``versions`` is false, the
            version probes that explain it get this many seconds in all.

    Raises:
        TLSError: as below, and when the server requires a client certificate and none was
            given, or refuses the one given (``client_certificate`` says when one was asked
            for and accepted).
        TransportError: no connection, no TLS at all, a handshake failure other than
            certificate verification, a timeout; also no common version or cipher when no
            version probe gets through either (the message says what the probes saw).
        RemoteProtocolError: the STARTTLS dialogue failed.
    """
    name = servername or host
    side = ClientSide(cafile, lab_cafile, certfile, keyfile, strict_x509)
    trust = _trust(cafile, lab_cafile, strict_x509)
    ctx = side.context(minimum_version, maximum_version, ciphers)
    requested = _watch_certificate_request(ctx)
    presented = certfile is not None
    tls, peer, error = attempt(host, port, ctx, name, starttls, timeout)
    no_common_ground_error = no_common_ground(error)
    with closing(tls):
        cert_failure = isinstance(error, ssl.SSLCertVerificationError)
        if error is not None:
            refusal = _client_cert_refusal(error, bool(requested), presented, peer)
            if refusal is not None:
                raise refusal from error
        if error is not None and not cert_failure and no_common_ground_error is None:
            raise handshake_error(error, peer, timeout) from error
        ders = peer_chain(tls, verified=error is None) if no_common_ground_error is None else []
        session = session_params(tls) if error is None else (None, None, None, None)
        client_cert = "not requested"
        if error is None and requested:
            late = _await_client_cert_verdict(tls, timeout) if session[0] == "TLSv1.3" else None
            refusal = _client_cert_refusal(late, True, presented, peer) if late else None
            if refusal is not None:
                raise refusal from late
            client_cert = (
                "requested; ours was accepted"
                if presented
                else "requested; none sent, and the server went on without one"
            )
    if no_common_ground_error is not None:
        return _inspect_by_probes(
            no_common_ground_error,
            host=host,
            port=port,
            peer=peer,
            name=name,
            starttls=starttls,
            side=side,
            trust=trust,
            budget=None if versions else timeout,
            timeout=timeout,
        )
    chain = describe_chain(ders)
    if isinstance(error, ssl.SSLCertVerificationError):
        judged = verdict(error.verify_code, str(error.verify_message or ""), chain, name, trust)
    else:
        judged = verdict(None, "", chain, name, trust)
    leaf = chain[0] if chain else None
    matched = match_name(name, leaf.dns_names, leaf.ip_addresses) if leaf else None
    if matched is None and leaf is not None and error is None and not strict_x509:
        # OpenSSL matched the name by the subject's common name: the certificate has no
        # subjectAltName at all, which only the non-strict mode accepts.
        matched = f"{leaf.subject} (common name; no subjectAltName)"
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
            certfile=certfile,
            keyfile=keyfile,
            strict_x509=strict_x509,
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
        client_certificate=client_cert,
    )


def _inspect_by_probes(
    error: ssl.SSLError,
    *,
    host: str,
    port: int,
    peer: str,
    name: str,
    starttls: str | None,
    side: ClientSide,
    trust: str,
    budget: float | None,
    timeout: float,
) -> Inspection:
    """Explain a verifying handshake that found no common version or cipher, by probing."""
    reason = describe_tls_error(error)
    log.info("%s: %s; probing TLS 1.0-1.3 one at a time", peer, reason)
    deadline = time.monotonic() + budget if budget is not None else None
    probes = probe_all(host, port, name, starttls, side, timeout, deadline)
    results = tuple(result for result, _ in probes)
    accepted = [r.version for r in results if r.status == ACCEPTED]
    if not accepted:
        base = handshake_error(error, peer, timeout)
        raise type(base)(f"{base}; {probe_summary(results)}") from error
    source, seen = next(
        ((r.version, s) for r, s in reversed(probes) if s is not None and s.ders), (None, None)
    )
    chain = describe_chain(seen.ders) if seen is not None else ()
    leaf = chain[0] if chain else None
    return Inspection(
        host=host,
        port=port,
        peer=peer,
        servername=name,
        starttls=starttls,
        trust=trust,
        verdict=version_verdict(accepted, reason),
        findings=findings(chain, name),
        chain=chain,
        chain_verified=False,  # this client never verified it: it could not talk to the server
        name_match=match_name(name, leaf.dns_names, leaf.ip_addresses) if leaf else None,
        versions=results,
        handshake_error=reason,
        chain_source=source,
        probe_verdict=(
            verdict(seen.verify_code, seen.verify_message, chain, name, trust)
            if seen is not None
            else None
        ),
    )


def _insecure_session(
    host: str, port: int, name: str, starttls: str | None, timeout: float
) -> Session:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # explicit --insecure, inspection only: no data is sent
    tls, peer, error = attempt(host, port, ctx, name, starttls, timeout)
    with closing(tls):
        if error is not None:
            raise handshake_error(error, peer, timeout) from error
        return session_params(tls)
