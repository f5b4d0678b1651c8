"""One plain line on why a certificate chain was trusted or not (RFC 5280 path validation).

OpenSSL stops at the first failure it finds and reports an ``X509_V_ERR_*`` code (exposed by
Python as ``SSLCertVerificationError.verify_code``). :func:`verdict` turns that code and the
chain the peer sent into a sentence a person can act on, with dates, names and key sizes
filled in. :func:`findings` lists every defect the chain shows on its own (a chain can be
expired *and* for the wrong host; OpenSSL names only one). Pure: no sockets, no OpenSSL calls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wirelab.net.tlsctx import STRICT_X509_HINT
from wirelab.tls.certinfo import CertInfo
from wirelab.tls.names import match_name

__all__ = ["MIN_RSA_BITS", "Verdict", "findings", "verdict"]

#: RSA keys below this size fail OpenSSL security level 2, Python's default since 3.10
#: (112-bit security; NIST SP 800-57 Part 1 Table 2: RSA 2048 gives 112 bits).
MIN_RSA_BITS = 2048

# X509_V_ERR_* codes from OpenSSL's include/openssl/x509_vfy.h.
_UNABLE_TO_GET_ISSUER_CERT = 2
_CERT_SIGNATURE_FAILURE = 7
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_SELF_SIGNED_CERT_IN_CHAIN = 19
_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
_CERT_REVOKED = 23
_INVALID_CA = 24
_INVALID_PURPOSE = 26
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64
_EE_KEY_TOO_SMALL = 66
_CA_KEY_TOO_SMALL = 67
_CA_MD_TOO_WEAK = 68
#: PATHLEN_INVALID_FOR_NON_CA ... EC_KEY_EXPLICIT_PARAMS: the checks of VERIFY_X509_STRICT.
_STRICT_CODES = range(80, 95)


@dataclass(frozen=True)
class Verdict:
    """Whether the peer's certificate was trusted, and why (not).

    Attributes:
        ok: the chain verified and the name matched.
        problem: a short code (``expired``, ``wrong-host``, ``self-signed``, ``untrusted``,
            ``weak-key``, ``weak-signature``, ``bad-signature``, ``not-yet-valid``,
            ``revoked``, ``invalid-ca``, ``wrong-purpose``, ``not-conformant``, ``other``),
            ``None`` when ok.
        line: the one plain line for people.
    """

    ok: bool
    problem: str | None
    line: str


def _weak_digest(algorithm: str) -> bool:
    return "sha1" in algorithm or "md5" in algorithm


def _day(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d")


def _names(leaf: CertInfo) -> str:
    names = leaf.names
    if not names:
        return "no name at all (no subjectAltName)"
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _cn(name: str) -> str:
    """``CN=wirelab Untrusted CA,O=x`` -> ``wirelab Untrusted CA`` (else the whole name)."""
    for part in name.split(","):
        if part.startswith("CN="):
            return part[3:]
    return name


def _describe(
    code: int,
    message: str,
    chain: tuple[CertInfo, ...],
    servername: str,
    trust: str,
    now: dt.datetime,
) -> tuple[str, str]:
    leaf = chain[0] if chain else None
    top = chain[-1] if chain else None
    if code == _CERT_HAS_EXPIRED and leaf is not None:
        gone = next((c for c in chain if c.expired(now)), leaf)
        days = (now - gone.not_after).days
        which = "the certificate" if gone is leaf else f"the CA certificate {_cn(gone.subject)}"
        return "expired", f"expired: {which} ran out on {_day(gone.not_after)} ({days} days ago)"
    if code == _CERT_NOT_YET_VALID and leaf is not None:
        return "not-yet-valid", f"not yet valid: the certificate starts on {_day(leaf.not_before)}"
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH) and leaf is not None:
        return "wrong-host", f"wrong host: the certificate names {_names(leaf)}, not {servername}"
    if code == _DEPTH_ZERO_SELF_SIGNED_CERT and leaf is not None:
        return (
            "self-signed",
            f"self-signed: the certificate ({_cn(leaf.subject)}) vouches for itself; "
            f"no trusted CA signed it (trusting the {trust})",
        )
    if code == _SELF_SIGNED_CERT_IN_CHAIN and top is not None:
        return (
            "untrusted",
            f"untrusted: the chain ends in {_cn(top.subject)}, which is not a trusted CA "
            f"(trusting the {trust})",
        )
    if (
        code
        in (
            _UNABLE_TO_GET_ISSUER_CERT,
            _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            _UNABLE_TO_VERIFY_LEAF_SIGNATURE,
        )
        and top is not None
    ):
        return (
            "untrusted",
            f"untrusted: signed by {_cn(top.issuer)}, which is not a trusted CA "
            f"(trusting the {trust})",
        )
    if code in (_EE_KEY_TOO_SMALL, _CA_KEY_TOO_SMALL):
        weak = next((c for c in chain if c.key_type == "RSA" and c.key_bits < MIN_RSA_BITS), leaf)
        key = f"{weak.key_type} {weak.key_bits}-bit key" if weak is not None else "key"
        return (
            "weak-key",
            f"weak key: the certificate's {key} is too weak; this client requires RSA of "
            f"{MIN_RSA_BITS} bits or more (OpenSSL security level 2)",
        )
    if code == _CA_MD_TOO_WEAK:
        weak_algos = [c.signature_algorithm for c in chain if _weak_digest(c.signature_algorithm)]
        algo = weak_algos[0] if weak_algos else "a weak digest"
        return "weak-signature", f"weak signature: signed with {algo}, which this client refuses"
    if code == _CERT_SIGNATURE_FAILURE:
        return "bad-signature", "bad signature: a certificate's signature does not verify"
    if code == _CERT_REVOKED:
        return "revoked", "revoked: the issuer has revoked this certificate"
    if code == _INVALID_CA:
        return "invalid-ca", "invalid CA: an issuer in the chain is not allowed to act as a CA"
    if code == _INVALID_PURPOSE:
        return "wrong-purpose", "wrong purpose: the certificate is not for TLS servers"
    if code in _STRICT_CODES:
        return (
            "not-conformant",
            f"not RFC 5280-conformant: {message} (strict X.509); {STRICT_X509_HINT}",
        )
    return "other", f"not trusted: {message} (OpenSSL verify error {code})"


def verdict(
    verify_code: int | None,
    verify_message: str,
    chain: tuple[CertInfo, ...],
    servername: str,
    trust: str,
    *,
    now: dt.datetime | None = None,
) -> Verdict:
    """Explain a verification outcome in one line.

    Args:
        verify_code: OpenSSL's ``X509_V_ERR_*`` code, or ``None`` when verification passed.
        verify_message: OpenSSL's own short text for the code.
        chain: the certificates the peer sent, leaf first.
        servername: the name the client checked the certificate against.
        trust: what the client trusted, for the sentence (``"lab CA + system store"``).
        now: the time to judge validity at (default: now).
    """
    when = now or dt.datetime.now(dt.UTC)
    if verify_code is None:
        return Verdict(
            True,
            None,
            f"trusted: the chain verifies against the {trust}, and the certificate names "
            f"{servername}",
        )
    problem, line = _describe(verify_code, verify_message, chain, servername, trust, when)
    return Verdict(False, problem, line)


def findings(
    chain: tuple[CertInfo, ...], servername: str | None, *, now: dt.datetime | None = None
) -> list[str]:
    """Every defect the chain shows by itself (trust aside), as short codes.

    Codes: ``expired``, ``not-yet-valid``, ``wrong-host``, ``no-subject-alt-name`` (the leaf
    names nothing a strict client can match; only ``--no-strict-x509`` falls back to its common
    name), ``self-signed``, ``weak-key``, ``weak-signature``; an empty list when the chain
    looks sound.
    """
    when = now or dt.datetime.now(dt.UTC)
    found: list[str] = []
    if not chain:
        return found
    leaf = chain[0]
    if any(c.expired(when) for c in chain):
        found.append("expired")
    if any(c.not_yet_valid(when) for c in chain):
        found.append("not-yet-valid")
    if not leaf.dns_names and not leaf.ip_addresses:
        found.append("no-subject-alt-name")
    elif servername and match_name(servername, leaf.dns_names, leaf.ip_addresses) is None:
        found.append("wrong-host")
    if leaf.self_signed:
        found.append("self-signed")
    if any(c.key_type == "RSA" and c.key_bits < MIN_RSA_BITS for c in chain):
        found.append("weak-key")
    if any(_weak_digest(c.signature_algorithm) for c in chain[:-1]):
        found.append("weak-signature")
    return found
