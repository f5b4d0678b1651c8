"""Secure ``ssl.SSLContext`` builders and plain-English TLS errors (TLS 1.2/1.3, RFC 5280).

Layer: TLS, above TCP sockets and below every protocol that runs over it (HTTPS, SMTP with
STARTTLS, POP3S, IMAPS, FTPS). The book's programs wrap sockets with the removed
``ssl.wrap_socket``, match host names by hand, or let poplib/imaplib/smtplib skip
verification. Here every client context verifies, and nothing in this module can turn that
off:

* ``check_hostname`` is on and ``verify_mode`` is ``CERT_REQUIRED`` (RFC 6125 host names,
  matched against the subjectAltName only);
* ``VERIFY_X509_STRICT`` is set on every Python, as Python 3.13 does by default, so a
  certificate accepted on 3.11 is also accepted on 3.13 (RFC 5280 conformance: critical
  basicConstraints in CAs, keyUsage, key identifiers ...), and host names match the
  subjectAltName only, never the subject's common name (RFC 6125 §6.4.4);
* ``strict_x509=False`` is the one explicit opt-out, for older CAs such as the book's own
  (its basicConstraints are not critical, its leaf certificates carry no subjectAltName and no
  key identifiers): it drops those RFC 5280 conformance checks and lets a certificate *without
  any* subjectAltName match by its common name. It still verifies the signature chain up to a
  trusted CA, the validity dates, and the host name;
* TLS 1.0 and 1.1 are refused: RFC 8996 says they MUST NOT be negotiated, so the lowest
  ``minimum_version`` accepted is TLS 1.2.

Errors: loading bad files raises :class:`~wirelab.errors.ConfigError`; a failed handshake is
turned into :class:`~wirelab.errors.TLSError` by :func:`wrap_tls_error`, whose message is one
line from :func:`describe_tls_error` ("certificate has expired" ...).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Sequence

from wirelab.errors import ConfigError, TLSError

__all__ = [
    "MINIMUM_TLS_VERSION",
    "STRICT_X509_HINT",
    "client_context",
    "describe_tls_error",
    "file_error",
    "server_context",
    "wrap_tls_error",
]

#: The oldest TLS version wirelab negotiates (RFC 8996 deprecates TLS 1.0 and 1.1).
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2

_ALLOWED_MINIMUMS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)

PathLike = str | os.PathLike[str]


def _check_minimum(version: ssl.TLSVersion) -> None:
    if version not in _ALLOWED_MINIMUMS:
        raise ConfigError(
            f"minimum TLS version {version.name} is not allowed: TLS 1.0 and 1.1 must not be "
            "negotiated (RFC 8996); use TLSv1_2 or TLSv1_3"
        )


def _set_versions(
    ctx: ssl.SSLContext, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion | None
) -> None:
    """Set the version range: ``minimum`` (1.2 or 1.3) up to ``maximum`` (``None``: newest)."""
    _check_minimum(minimum)
    ctx.minimum_version = minimum
    if maximum is None:
        return
    if maximum not in _ALLOWED_MINIMUMS:
        raise ConfigError(
            f"maximum TLS version {maximum.name} is not allowed: use TLSv1_2 or TLSv1_3"
        )
    if maximum < minimum:
        raise ConfigError(
            f"the maximum TLS version {maximum.name} is older than the minimum {minimum.name}"
        )
    ctx.maximum_version = maximum


#: What a strict-verification failure can add: the opt-out, and what it keeps.
STRICT_X509_HINT = (
    "an older CA, such as the book's, needs --no-strict-x509 (which still checks the chain "
    "and the name)"
)


def file_error(exc: BaseException) -> str:
    """Why a file could not be loaded, in words (``No such file or directory``, no errno)."""
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _load_chain(
    ctx: ssl.SSLContext, certfile: PathLike, keyfile: PathLike | None, what: str
) -> None:
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        detail = file_error(exc)
        raise ConfigError(f"cannot load the {what} certificate {certfile}: {detail}") from exc


def client_context(
    *,
    cafile: PathLike | None = None,
    cadata: str | bytes | None = None,
    certfile: PathLike | None = None,
    keyfile: PathLike | None = None,
    minimum_version: ssl.TLSVersion = MINIMUM_TLS_VERSION,
    maximum_version: ssl.TLSVersion | None = None,
    strict_x509: bool = True,
) -> ssl.SSLContext:
    """Build a verifying client context.

    Args:
        cafile: PEM file of the CAs to trust (the lab's ``ca.pem``); with neither this nor
            ``cadata``, the system's trust store is used.
        cadata: CAs to trust as PEM text (``str``, or ``bytes`` starting with ``-----BEGIN``)
            or as DER ``bytes``.
        certfile: a client certificate (PEM, chain allowed) for servers that ask for one.
        keyfile: its key, when it is not in ``certfile``.
        minimum_version: ``TLSv1_2`` (default) or ``TLSv1_3``.
        maximum_version: the newest version to offer (``None``: the newest OpenSSL has);
            equal to ``minimum_version`` pins one version.
        strict_x509: RFC 5280 conformance checks and subjectAltName-only names (default).
            ``False`` accepts a conformant-in-spirit older CA (see the module's docstring);
            the chain, the dates and the name are still verified.

    Raises:
        ConfigError: a file cannot be read or parsed, or the version range is refused.
    """
    _check_minimum(minimum_version)
    if isinstance(cadata, bytes) and cadata.lstrip().startswith(b"-----BEGIN"):
        cadata = cadata.decode("ascii")
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=os.fspath(cafile) if cafile is not None else None,
            cadata=cadata,
        )
    except (OSError, ValueError) as exc:
        source = f"the CA file {cafile}" if cafile is not None else "the CA data"
        raise ConfigError(f"cannot load {source}: {file_error(exc)}") from exc
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if strict_x509:
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.hostname_checks_common_name = False
    else:  # explicit opt-out (Python 3.13 sets the flag by default: clear it)
        ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
        ctx.hostname_checks_common_name = True
    _set_versions(ctx, minimum_version, maximum_version)
    if certfile is not None:
        _load_chain(ctx, certfile, keyfile, "client")
    elif keyfile is not None:
        raise ConfigError("a client key was given without its certificate")
    return ctx


def server_context(
    certfile: PathLike,
    keyfile: PathLike | None = None,
    *,
    client_cafile: PathLike | None = None,
    require_client_cert: bool = False,
    minimum_version: ssl.TLSVersion = MINIMUM_TLS_VERSION,
    maximum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """Build a server context that presents ``certfile`` and may verify client certificates.

    Args:
        certfile: the server certificate, followed by its chain (PEM).
        keyfile: its key, when it is not in ``certfile``.
        client_cafile: CAs whose client certificates are accepted. Given alone, clients are
            asked for a certificate (``CERT_OPTIONAL``: one that is sent must verify).
            Only these CAs are trusted for clients, never the system store.
        require_client_cert: refuse clients without a certificate (``CERT_REQUIRED``).
        minimum_version: ``TLSv1_2`` (default) or ``TLSv1_3``.
        maximum_version: the newest version to accept (``None``: the newest OpenSSL has).

    Raises:
        ConfigError: a file cannot be read, the key does not match, a client certificate is
            required without ``client_cafile``, or the version range is refused.
    """
    _check_minimum(minimum_version)
    if require_client_cert and client_cafile is None:
        raise ConfigError("requiring client certificates needs client_cafile to verify them")
    try:
        # With a cafile, create_default_context loads that instead of the system store.
        ctx = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH,
            cafile=os.fspath(client_cafile) if client_cafile is not None else None,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the client CA file {client_cafile}: {file_error(exc)}"
        ) from exc
    _set_versions(ctx, minimum_version, maximum_version)
    _load_chain(ctx, certfile, keyfile, "server")
    if client_cafile is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


_UNKNOWN_CA = "unknown CA (not signed by a trusted authority)"
_NOT_CONFORMANT = "certificate is not RFC 5280-conformant (strict verification)"

#: OpenSSL ``X509_V_ERR_*`` codes (``x509_vfy.h``) as one plain line each.
_VERIFY_CODES: dict[int, str] = {
    2: _UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT
    7: "certificate signature is invalid",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: _UNKNOWN_CA,  # SELF_SIGNED_CERT_IN_CHAIN: the chain ends in a root nobody trusts here
    20: _UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: _UNKNOWN_CA,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE (no issuer: untrusted, or chain cut short)
    22: "certificate chain is too long",
    23: "certificate has been revoked",
    25: "certificate chain is too long for the CA's path length constraint",
    26: "certificate is not for this use (its extendedKeyUsage does not allow it)",
    27: "certificate is not trusted for this use",
    28: "certificate is rejected for this use",
    32: "issuer may not sign certificates (keyUsage without keyCertSign)",
    37: "issuer is not a CA certificate",
    66: "certificate key is too small",
    67: "CA key is too small",
    68: "CA signature digest is too weak",
    79: "issuer is not a valid CA certificate",
}
_STRICT_CODES = range(80, 95)  # PATHLEN_INVALID_FOR_NON_CA ... EC_KEY_EXPLICIT_PARAMS
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64

_NOT_TLS = "peer does not speak TLS"
_NO_VERSION = "no TLS version in common"
_HANDSHAKE = "handshake failure (no cipher in common, or the peer wanted a client certificate)"

#: OpenSSL reason strings (``ssl.SSLError.reason``) as one plain line each.
_REASONS: dict[str, str] = {
    "WRONG_VERSION_NUMBER": _NOT_TLS,
    "UNKNOWN_PROTOCOL": _NOT_TLS,
    "RECORD_LAYER_FAILURE": _NOT_TLS,
    "PACKET_LENGTH_TOO_LONG": _NOT_TLS,
    "HTTP_REQUEST": "peer sent a plain HTTP request to a TLS port",
    "HTTPS_PROXY_REQUEST": "peer sent an HTTP proxy request to a TLS port",
    "UNSUPPORTED_PROTOCOL": _NO_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": _NO_VERSION,
    "NO_PROTOCOLS_AVAILABLE": _NO_VERSION,
    "VERSION_TOO_LOW": _NO_VERSION,
    "WRONG_SSL_VERSION": _NO_VERSION,
    "NO_SHARED_CIPHER": "no cipher suite in common",
    "NO_CIPHERS_AVAILABLE": "no cipher suite in common",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": _HANDSHAKE,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "peer requires a client certificate",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "peer sent no client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "peer does not trust our certificate (unknown CA)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "peer rejected our certificate (bad certificate)",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "peer rejected our certificate (wrong type or use)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "peer rejected our certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "peer says our certificate has expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "peer says our certificate has been revoked",
    "TLSV1_ALERT_ACCESS_DENIED": "peer denied access",
    "TLSV1_UNRECOGNIZED_NAME": "peer does not serve that host name (SNI)",
    "TLSV1_ALERT_INTERNAL_ERROR": "peer had an internal TLS error",
    "KEY_VALUES_MISMATCH": "certificate and private key do not match",
    "UNEXPECTED_EOF_WHILE_READING": "peer closed the connection in the middle of TLS",
}


def _quoted(message: str) -> str | None:
    found = re.search(r"'([^']*)'", message)
    return found.group(1) if found else None


def describe_tls_error(
    exc: ssl.SSLError | ssl.SSLCertVerificationError,
    *,
    certificate_names: Sequence[str] | None = None,
) -> str:
    """Say in one plain line why a TLS handshake (or a later TLS read/write) failed.

    Args:
        exc: the error ``ssl`` raised.
        certificate_names: the names the peer's certificate holds, when the caller knows them
            (the failed handshake does not keep the certificate); they make a host name
            mismatch read "certificate is for X, not Y".

    Returns:
        For example "certificate has expired", "self-signed certificate" or
        "unknown CA (not signed by a trusted authority)".
    """
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_code is not None:
        code, message = exc.verify_code, str(exc.verify_message or "")
        if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
            kind = "hostname" if code == _HOSTNAME_MISMATCH else "IP address"
            wanted = _quoted(message) or "the requested name"
            if certificate_names:
                names = ", ".join(certificate_names)
                return f"{kind} mismatch: certificate is for {names}, not {wanted}"
            return f"{kind} mismatch: certificate is not valid for {wanted}"
        if code in _VERIFY_CODES:
            return _VERIFY_CODES[code]
        if code in _STRICT_CODES:
            return f"{_NOT_CONFORMANT}: {message}"
        return f"certificate verification failed: {message or f'OpenSSL error {code}'}"
    if isinstance(exc, ssl.SSLZeroReturnError):
        return "peer closed the TLS connection"
    reason = getattr(exc, "reason", None)
    if reason in _REASONS:
        return _REASONS[reason]
    if isinstance(exc, ssl.SSLEOFError):
        return _REASONS["UNEXPECTED_EOF_WHILE_READING"]
    if reason:
        return f"TLS error: {reason.lower().replace('_', ' ')}"
    return f"TLS error: {exc}"


def wrap_tls_error(
    exc: ssl.SSLError, host: str, *, certificate_names: Sequence[str] | None = None
) -> TLSError:
    """Turn an ``ssl`` error into our :class:`~wirelab.errors.TLSError` naming ``host``.

    Use as ``raise wrap_tls_error(exc, host) from exc`` so the original stays the cause.
    """
    line = describe_tls_error(exc, certificate_names=certificate_names)
    return TLSError(f"TLS with {host} failed: {line}")
