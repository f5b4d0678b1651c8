"""One connection and one handshake, as the TLS inspector and its version probes make them.

:class:`ClientSide` is what our side brings to every handshake of an inspection (trust, a
client certificate, X.509 strictness); :func:`attempt` connects, runs STARTTLS when asked
and makes one handshake, returning the error instead of raising it so that the caller can
read what the failed handshake saw; :func:`closing` closes the connection with our
close_notify; :func:`session_params` reads the negotiated version and cipher. What the
handshakes mean is :mod:`wirelab.tls.inspect`'s and :mod:`wirelab.tls.versions`' business.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from wirelab.net.addresses import connect_tcp, format_address
from wirelab.tls.client import close_tls, make_client_context, negotiate_starttls

__all__ = ["ClientSide", "PathArg", "Session", "attempt", "closing", "session_params"]

PathArg = str | os.PathLike[str] | None

#: The negotiated (version, cipher, cipher bits, compression); all None before a handshake.
Session = tuple[str | None, str | None, int | None, str | None]


@contextlib.contextmanager
def closing(tls: ssl.SSLSocket) -> Iterator[ssl.SSLSocket]:
    """Close an inspection's connection with our close_notify when it can still carry one."""
    try:
        yield tls
    finally:
        close_tls(tls)


@dataclass(frozen=True)
class ClientSide:
    """What our side brings to every handshake of one inspection (the probes too).

    Attributes:
        cafile: trust only this PEM file.
        lab_cafile: with no ``cafile``, trust this file as well as the system store.
        certfile: a client certificate to present when asked (PEM).
        keyfile: its key, when not in ``certfile``.
        strict_x509: RFC 5280 strictness (default); ``False`` is the explicit opt-out for
            older CAs, which still verifies the chain and the name.
    """

    cafile: PathArg = None
    lab_cafile: PathArg = None
    certfile: PathArg = None
    keyfile: PathArg = None
    strict_x509: bool = True

    def context(
        self,
        minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        maximum_version: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> ssl.SSLContext:
        """A verifying client context with this trust, certificate and strictness."""
        return make_client_context(
            cafile=self.cafile,
            extra_cafile=self.lab_cafile,
            certfile=self.certfile,
            keyfile=self.keyfile,
            minimum_version=minimum_version,
            maximum_version=maximum_version,
            ciphers=ciphers,
            strict_x509=self.strict_x509,
        )


def attempt(
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


def session_params(tls: ssl.SSLSocket) -> Session:
    """The session parameters of a completed handshake."""
    cipher = tls.cipher()
    return (
        tls.version(),
        cipher[0] if cipher else None,
        cipher[2] if cipher else None,
        tls.compression(),
    )
