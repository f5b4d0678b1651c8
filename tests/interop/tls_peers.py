"""Test-only peers that behave on the wire like the book's chapter 6 ``safe_tls.py``.

Written from the book's *behaviour* (py3/chapter06/safe_tls.py in brandon-rhodes/fopnp), not
its code. What the book's two halves do:

* **server** (``safe_tls.py -s CERTFILE HOST PORT``): a default context for client
  authentication (``create_default_context(Purpose.CLIENT_AUTH)``, so no client certificate
  is asked for) with one PEM file holding certificate and key; accepts **one** connection,
  completes the handshake, sends the 30 bytes ``Simple is better than complex.`` and closes
  the socket **without a TLS close_notify**. It reads nothing from the client.
* **client** (``safe_tls.py [-a CAFILE] HOST PORT``): a default context for server
  authentication (the CA file, else the system store; strict X.509 on Python 3.13+), SNI and
  host name checking against ``HOST``; prints ``Connected to host 'HOST' and port PORT``,
  then ``repr()`` of every chunk it receives until the end of the stream (a close_notify or a
  bare EOF: the ``ssl`` module's default ``suppress_ragged_eofs``), and exits without closing
  TLS (no close_notify of its own). It sends nothing.

The peers record a :class:`Transcript`: the application bytes each way, how the other side
ended the stream (``close_notify`` or ``eof``), and the lines the book's program prints. The
recording uses ``suppress_ragged_eofs=False`` only to *tell* the two endings apart; both end
the read loop, as in the book, and nothing extra crosses the wire.

:func:`book_certificates` makes certificates with the book's flaw: a CA whose
basicConstraints is not marked critical and that has no keyUsage, and a leaf with no
extensions at all (no subjectAltName, no key identifiers), like the book's ``ca.crt`` and
``localhost.pem``. (The book's leaves are X.509 v1; ``cryptography`` writes only v3, with no
extensions here, which strict verification refuses for the same reasons.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: What the book's server sends: exactly these 30 bytes, no newline.
BOOK_GREETING = b"Simple is better than complex."


@dataclass
class Transcript:
    """What crossed one connection, seen from the book peer's side."""

    sent: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    ended_by: str = ""  # how the other side ended: "close_notify", "eof" or "" (not read)
    printed: list[str] = field(default_factory=list)
    version: str = ""
    error: str = ""


@dataclass(frozen=True)
class BookCertificates:
    """The book-like CA (``ca.crt``) and server PEM (certificate then key, ``localhost.pem``)."""

    ca: Path
    server_pem: Path


def book_certificates(directory: Path, hostname: str = "localhost") -> BookCertificates:
    """A CA with a non-critical basicConstraints and no keyUsage, and a bare leaf for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example CA (book-like, test only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ca"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        # the book's flaw: CA:TRUE, but not marked critical (RFC 5280 §4.2.1.9 says MUST)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())  # no extensions: no subjectAltName, no AKID
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pem = directory / f"{hostname}.pem"
    pem.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return BookCertificates(ca_path, pem)


def _read_to_end(tls: ssl.SSLSocket, transcript: Transcript, *, show: bool) -> None:
    """Read every chunk until the end of the stream, noting how it ended."""
    while True:
        try:
            data = tls.recv(1024)
        except ssl.SSLEOFError:
            transcript.ended_by = "eof"
            return
        if not data:
            transcript.ended_by = "close_notify"
            return
        transcript.received.append(data)
        if show:
            transcript.printed.append(repr(data))


@contextlib.contextmanager
def book_server(
    certfile: Path,
    *,
    maximum_version: ssl.TLSVersion | None = None,
    observe_client_close: bool = False,
) -> Iterator[tuple[tuple[str, int], Transcript]]:
    """The book's server on 127.0.0.1 (one connection); yields its address and transcript.

    ``maximum_version`` caps the server (the book's has no cap: TLS 1.3 today), to show both
    TLS modes. ``observe_client_close`` is *not* the book's behaviour: after sending, the
    server sends its own close_notify and waits for the client's (``ended_by`` says whether
    it came); it is for the test of our client's own close_notify only.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certfile))
    if maximum_version is not None:
        context.maximum_version = maximum_version
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(15)
    host, port = listener.getsockname()[:2]
    transcript = Transcript(printed=[f"Listening at interface {host!r} and port {port}"])

    def serve() -> None:
        try:
            raw, address = listener.accept()
        except OSError as exc:
            transcript.error = f"accept: {exc}"
            return
        transcript.printed.append("Connection from host {!r} and port {}".format(*address))
        raw.settimeout(15)
        try:
            tls = context.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (OSError, ssl.SSLError) as exc:  # the client refused us (strict X.509 ...)
            transcript.error = f"handshake: {exc}"
            raw.close()
            return
        try:
            transcript.version = tls.version() or ""
            try:
                tls.sendall(BOOK_GREETING)
            except OSError as exc:  # the client already left (an inspector): the book's
                transcript.error = f"send: {exc}"  # server dies here with a traceback
                return
            transcript.sent.append(BOOK_GREETING)
            if observe_client_close:
                try:
                    tls.unwrap()  # ours out, then wait for the client's
                    transcript.ended_by = "close_notify"
                except (OSError, ssl.SSLError):
                    transcript.ended_by = "eof"
        finally:
            # the book's close(): the socket goes, no unwrap, so no close_notify
            tls.close()

    thread = threading.Thread(target=serve, name="book-tls-server")
    thread.start()
    try:
        yield (host, port), transcript
    finally:
        thread.join(20)
        listener.close()


def book_client(
    host: str, port: int, *, cafile: Path | None, address: str = "127.0.0.1"
) -> Transcript:
    """The book's client: connect, verify ``host``, print each chunk until the end.

    ``address`` is where to connect (the book connects to ``host`` itself; the lab listens
    on loopback, so the name and the address are given apart here, as ``localhost`` is).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    transcript = Transcript()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(15)
    try:
        raw.connect((address, port))
        transcript.printed.append(f"Connected to host {host!r} and port {port}")
        tls = context.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)
    except (OSError, ssl.SSLError) as exc:
        transcript.error = str(exc)
        raw.close()
        return transcript
    transcript.version = tls.version() or ""
    try:
        _read_to_end(tls, transcript, show=True)
    finally:
        # the book's client just exits: the socket is closed, TLS never is
        tls.close()
    return transcript
