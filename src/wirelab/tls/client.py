"""TLS clients (RFC 8446, RFC 5246) with verification always on, and STARTTLS (chapter 6).

The book's ``safe_tls.py`` client, done right: a context from
:func:`wirelab.net.tlsctx.client_context` (system store or a CA file, host name checked,
TLS 1.2+), SNI, an optional client certificate, a deadline on the TCP connect and on the
handshake, a byte limit on what is read, and errors that say what happened in one line:

* a peer that does not speak TLS -> :class:`~wirelab.errors.TLSError` ("peer does not speak
  TLS");
* a handshake that stalls -> :class:`~wirelab.errors.Timeout`;
* a peer that closes mid-handshake -> :class:`~wirelab.errors.Broken`;
* a certificate that does not verify -> :class:`~wirelab.errors.TLSError` naming the reason
  and, for a name mismatch, the names the certificate holds.

:func:`open_tls` returns the connected :class:`ssl.SSLSocket`; :func:`fetch` reads what a
server says until it closes (the chapter's greeting server), as the book's client does: it
sends nothing, reads every chunk until the end, and accepts the end whether the server sent
a TLS ``close_notify`` first (ours does) or just closed the TCP connection (the book's
``safe_tls.py`` server does: ``sendall`` then ``close()``). Which of the two happened is
reported (:attr:`Greeting.close_notify`): without ``close_notify`` nobody can tell a complete
message from one cut short on the path (RFC 8446 §6.1), which is harmless for a greeting and
why protocols with their own framing do not depend on it. When our client is done it sends
its own ``close_notify`` (:func:`close_tls`) before closing, unless the connection already
failed.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass

from wirelab.errors import (
    Broken,
    ConfigError,
    LocalProtocolError,
    Timeout,
    TLSError,
    TransportError,
)
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_MESSAGE, DEFAULT_TIMEOUT
from wirelab.net.tlsctx import client_context, file_error, wrap_tls_error
from wirelab.tls._starttls import NEED_DATA, READY, Send, StartTLSDialogue
from wirelab.tls.certinfo import describe

__all__ = [
    "Greeting",
    "close_tls",
    "fetch",
    "handshake",
    "handshake_error",
    "make_client_context",
    "negotiate_starttls",
    "open_tls",
    "peer_chain",
    "restrict_ciphers",
]

log = logging.getLogger(__name__)

_EOF_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


@dataclass(frozen=True)
class Greeting:
    """What a TLS server said before it closed, and the session it was said over.

    Attributes:
        data: the bytes received.
        version: the TLS version negotiated (``TLSv1.3``).
        cipher: the cipher suite's name.
        server: the server's address, ``host:port``.
        servername: the name the certificate was checked against (sent as SNI).
        peer_subject: the server certificate's subject (RFC 4514).
        close_notify: the server ended with a TLS close_notify; ``False`` when it just closed
            the TCP connection (the book's server), so the data could have been cut short.
    """

    data: bytes
    version: str
    cipher: str
    server: str
    servername: str
    peer_subject: str
    close_notify: bool = True

    @property
    def text(self) -> str:
        """The data decoded as UTF-8 (invalid bytes replaced)."""
        return self.data.decode("utf-8", "replace")


#: The lowest OpenSSL security level a cipher string may leave (Python's default since 3.10).
MIN_SECURITY_LEVEL = 2


def restrict_ciphers(ctx: ssl.SSLContext, ciphers: str) -> None:
    """Apply an OpenSSL cipher string (TLS 1.2 suites; TLS 1.3 suites are not affected) (F28).

    Unauthenticated and unencrypted suites are always removed, and a string that lowers the
    security level below :data:`MIN_SECURITY_LEVEL` (``@SECLEVEL=1``) is refused.

    Raises:
        ConfigError: the string selects nothing, or would weaken the context.
    """
    try:
        ctx.set_ciphers(f"{ciphers}:!aNULL:!eNULL")
    except ssl.SSLError as exc:
        raise ConfigError(f"the cipher string {ciphers!r} selects no cipher suite") from exc
    level = getattr(ctx, "security_level", MIN_SECURITY_LEVEL)
    if level < MIN_SECURITY_LEVEL:
        raise ConfigError(
            f"the cipher string {ciphers!r} lowers the OpenSSL security level to {level}; "
            f"wirelab keeps it at {MIN_SECURITY_LEVEL} or more"
        )


def make_client_context(
    *,
    cafile: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    extra_cafile: str | os.PathLike[str] | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    strict_x509: bool = True,
) -> ssl.SSLContext:
    """A verifying context: ``cafile`` alone, or the system store (plus ``extra_cafile``).

    Args:
        cafile: trust only the CAs in this PEM file.
        certfile: a client certificate to present (PEM, chain allowed).
        keyfile: its key, when not in ``certfile``.
        extra_cafile: with no ``cafile``, trust this file *and* the system store (the running
            lab's CA, so lab hosts and real hosts both verify).
        minimum_version: ``TLSv1_2`` (default) or ``TLSv1_3``.
        maximum_version: the newest version to offer; equal to ``minimum_version`` pins it
            (pin ``TLSv1_2`` for ``ciphers`` to decide the suite: TLS 1.3 suites are fixed).
        ciphers: an OpenSSL cipher string for TLS 1.2 (see :func:`restrict_ciphers`).
        strict_x509: ``False`` is the explicit opt-out of RFC 5280 strictness for older CAs
            (:func:`wirelab.net.tlsctx.client_context`); chain and name are still verified.

    Raises:
        ConfigError: a file cannot be loaded, or the version or cipher string is refused.
    """
    ctx = client_context(
        cafile=cafile,
        certfile=certfile,
        keyfile=keyfile,
        minimum_version=minimum_version,
        maximum_version=maximum_version,
        strict_x509=strict_x509,
    )
    if ciphers:
        restrict_ciphers(ctx, ciphers)
    if cafile is None and extra_cafile is not None:
        try:
            ctx.load_verify_locations(cafile=os.fspath(extra_cafile))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the CA file {extra_cafile}: {file_error(exc)}") from exc
    return ctx


def peer_chain(tls: ssl.SSLSocket, *, verified: bool) -> list[bytes]:
    """The DER certificates of the peer's chain, leaf first.

    After a successful handshake, ``verified=True`` gives the chain OpenSSL built up to the
    trust anchor. After a *failed* handshake, ``verified=False`` still gives the chain the
    peer sent, so the failure can be explained. On Python 3.13 these are the public
    ``get_verified_chain``/``get_unverified_chain``; on 3.11 and 3.12 the same calls on the
    ``_sslobj`` (present since 3.10); if neither exists, only the leaf, when verified.
    """
    name = "get_verified_chain" if verified else "get_unverified_chain"
    source: object = tls if hasattr(tls, name) else getattr(tls, "_sslobj", None)
    getter = getattr(source, name, None)
    if getter is not None:
        try:
            certs = getter() or []
        except (ValueError, ssl.SSLError):
            certs = []
        return [bytes(c.public_bytes(ssl._ssl.ENCODING_DER)) for c in certs]  # type: ignore[attr-defined]
    leaf = tls.getpeercert(binary_form=True) if verified else None
    return [leaf] if leaf else []


def _unverified_names(tls: ssl.SSLSocket) -> list[str]:
    chain = peer_chain(tls, verified=False)
    if not chain:
        return []
    try:
        return list(describe(chain[0]).names)
    except Exception:  # only for the message; a broken certificate is reported elsewhere
        return []


def handshake(
    sock: socket.socket,
    context: ssl.SSLContext,
    servername: str | None,
    *,
    peer: str,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> ssl.SSLSocket:
    """Run the TLS handshake on connected ``sock`` within ``timeout`` seconds.

    ``sock`` belongs to the returned socket afterwards (and is closed on failure).

    Raises:
        TLSError: the handshake failed (not TLS, no common version, certificate refused ...).
        Timeout: the handshake did not finish in time.
        Broken: the peer closed or reset the connection mid-handshake.
    """
    try:
        tls = context.wrap_socket(
            sock,
            # SNI goes out with the name; never for an address literal (RFC 6066 §3)
            server_hostname=servername.strip("[]") if servername else None,
            do_handshake_on_connect=False,
            # an EOF without close_notify is an error we can tell apart, not a silent b""
            suppress_ragged_eofs=False,
        )
    except (ValueError, ssl.SSLError) as exc:
        sock.close()
        raise TLSError(f"TLS with {peer} failed: cannot start TLS: {exc}") from exc
    tls.settimeout(timeout)
    try:
        tls.do_handshake()
    except (OSError, ValueError) as exc:  # ssl.SSLError and TimeoutError are OSErrors
        names = _unverified_names(tls) if isinstance(exc, ssl.SSLCertVerificationError) else []
        tls.close()
        raise handshake_error(exc, peer, timeout, certificate_names=names) from exc
    return tls


def handshake_error(
    exc: BaseException,
    peer: str,
    timeout: float,
    *,
    certificate_names: list[str] | None = None,
) -> TransportError:
    """Turn what a failed ``do_handshake()`` raised into one of our errors (one plain line).

    Use as ``raise handshake_error(exc, peer, timeout) from exc``.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return wrap_tls_error(exc, peer, certificate_names=certificate_names)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return Broken(f"TLS with {peer} failed: the peer closed the connection mid-handshake")
    if isinstance(exc, ssl.SSLError):
        return wrap_tls_error(exc, peer)
    if isinstance(exc, TimeoutError):
        return Timeout(f"the TLS handshake with {peer} did not finish within {timeout:g} s")
    if isinstance(exc, OSError) and exc.errno in _EOF_ERRNOS:
        return Broken(f"TLS with {peer} failed: the peer closed the connection mid-handshake")
    if isinstance(exc, OSError):
        return Broken(f"TLS with {peer} failed: {exc.strerror or exc}")
    return TLSError(f"TLS with {peer} failed: {exc}")


def negotiate_starttls(
    sock: socket.socket,
    protocol: str,
    *,
    peer: str,
    timeout: float = DEFAULT_TIMEOUT,
    client_name: str = "wirelab.localhost",
) -> None:
    """Speak ``protocol``'s plaintext dialogue on ``sock`` until the server agrees to TLS.

    Raises:
        RemoteProtocolError: the server refused STARTTLS or broke its protocol.
        Timeout: the whole dialogue did not finish within ``timeout`` seconds.
        Broken: the connection broke.
    """
    dialogue = StartTLSDialogue(protocol, client_name=client_name)
    deadline = time.monotonic() + timeout
    try:
        while True:
            event = dialogue.next_event()
            if event is READY:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            if isinstance(event, Send):
                sock.sendall(event.data)
            elif event is NEED_DATA:
                dialogue.receive_data(sock.recv(4096))
    except TimeoutError as exc:
        raise Timeout(
            f"the {protocol.upper()} dialogue with {peer} did not reach STARTTLS within "
            f"{timeout:g} s"
        ) from exc
    except OSError as exc:
        raise Broken(f"{protocol.upper()} with {peer} broke: {exc.strerror or exc}") from exc


def open_tls(
    host: str,
    port: int | str,
    *,
    context: ssl.SSLContext | None = None,
    servername: str | None = None,
    starttls: str | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> ssl.SSLSocket:
    """Connect to ``host``:``port``, optionally run STARTTLS, then the TLS handshake.

    Args:
        host: name or address to connect to.
        port: port number or service name.
        context: the client context (default: system store, see :func:`make_client_context`).
        servername: the name to verify the certificate against and send as SNI (default:
            ``host``). Connecting to an address while checking a name is how lab clients
            reach ``localhost`` services on 127.0.0.1.
        starttls: ``smtp``, ``pop3``, ``imap`` or ``ftp`` to upgrade a plaintext connection.
        timeout: seconds for the TCP connect, then again for the STARTTLS dialogue and for
            the handshake.

    Raises:
        TransportError: as :func:`handshake` and :func:`~wirelab.net.addresses.connect_tcp`.
        RemoteProtocolError: the STARTTLS dialogue failed.
    """
    ctx = context if context is not None else make_client_context()
    sock = connect_tcp(host, port, timeout=timeout)
    peer = format_address(sock.getpeername())
    try:
        if starttls:
            negotiate_starttls(sock, starttls, peer=peer, timeout=timeout)
    except BaseException:
        sock.close()
        raise
    return handshake(sock, ctx, servername or host, peer=peer, timeout=timeout)


def close_tls(tls: ssl.SSLSocket) -> bool:
    """Send our close_notify (RFC 8446 §6.1) without waiting for the peer's, then close.

    Returns whether the close_notify went out. A connection that already failed (the peer
    reset it, or closed it without a close_notify, which OpenSSL treats as fatal) cannot
    carry one any more; it is just closed.
    """
    sent = False
    try:
        tls.settimeout(0)  # the first SSL_shutdown writes ours; never block for theirs
        tls.unwrap()
        sent = True
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        sent = True  # ours is written; theirs has not arrived, and we do not wait
    except (OSError, ValueError):  # gone, reset, or in OpenSSL's error state
        pass
    finally:
        tls.close()
    return sent


def _is_ragged_eof(exc: BaseException) -> bool:
    """The TCP connection ended without a close_notify (OpenSSL 3's unexpected EOF)."""
    return isinstance(exc, ssl.SSLEOFError) or (
        isinstance(exc, ssl.SSLError)
        and getattr(exc, "reason", None) == "UNEXPECTED_EOF_WHILE_READING"
    )


def fetch(
    host: str,
    port: int | str,
    *,
    context: ssl.SSLContext | None = None,
    servername: str | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_MESSAGE,
) -> Greeting:
    """Connect over TLS and read everything the server sends until it closes.

    The server may end with a close_notify or by closing the TCP connection (the book's
    server); both end the greeting, and :attr:`Greeting.close_notify` says which. Our own
    close_notify goes out when we close.

    Raises:
        TransportError: as :func:`open_tls`; :class:`~wirelab.errors.TLSError` also when
            the server refuses us after the handshake (TLS 1.3 reports a missing or rejected
            client certificate only on the first read).
        LocalProtocolError: the server sent more than ``max_bytes``.
    """
    name = servername or host
    tls = open_tls(host, port, context=context, servername=name, timeout=timeout)
    try:
        # What the session is, read now: after an EOF without close_notify OpenSSL is in its
        # error state and no longer answers (getpeercert: "handshake not done yet").
        peer = format_address(tls.getpeername())
        cipher = tls.cipher()
        version = tls.version() or "?"
        der = tls.getpeercert(binary_form=True)
        tls.settimeout(read_timeout)
        chunks: list[bytes] = []
        size = 0
        clean = True
        try:
            while chunk := tls.recv(16 << 10):
                size += len(chunk)
                if size > max_bytes:
                    raise LocalProtocolError(f"{peer} sent more than {max_bytes} bytes")
                chunks.append(chunk)
        except ssl.SSLError as exc:
            if not _is_ragged_eof(exc):
                raise wrap_tls_error(exc, peer) from exc
            clean = False
            log.debug("%s closed without a TLS close_notify", peer)
        except TimeoutError as exc:
            raise Timeout(f"{peer} sent nothing for {read_timeout:g} s") from exc
        except OSError as exc:
            raise Broken(f"TLS with {peer} broke: {exc.strerror or exc}") from exc
    finally:
        close_tls(tls)
    return Greeting(
        data=b"".join(chunks),
        version=version,
        cipher=cipher[0] if cipher else "?",
        server=peer,
        servername=name,
        peer_subject=describe(der).subject if der else "",
        close_notify=clean,
    )
