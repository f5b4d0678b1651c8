"""The generic hostile probes: what any client of any TCP or UDP endpoint can do to it.

Each probe is a function ``probe(state, endpoint, during)``: it abuses the endpoint and calls
``during(what)`` while the abuse holds (connections open, a flood half sent), where the
caller runs the endpoint's normal client. Every loop is bounded in count *and* in time, and
every socket is closed when the probe returns. Traffic goes only to the lab's loopback
addresses. Random bytes come from a generator seeded by the probe and endpoint names, so a
failure replays.
"""

from __future__ import annotations

import contextlib
import errno
import random
import selectors
import socket
import ssl
import struct
import time
import warnings
from collections.abc import Callable, Iterator

from tests.hostile.conftest import served_within
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState

#: Called by a probe while its abuse holds: runs the normal client (``what`` names the moment).
During = Callable[[str], None]

#: A probe of one endpoint.
Probe = Callable[[LabState, BoundEndpoint, During], None]

#: Connections of the slowloris probe, and how long it dribbles (seconds) and how often.
SLOWLORIS_CONNECTIONS = 250
SLOWLORIS_SECONDS = 0.9
SLOWLORIS_TICK = 0.3

#: Connections reset by the reset probe, and short noisy ones of the random-bytes probe. Few on
#: purpose: a process-per-connection server (inetd nowait) starts a Python for each one, even
#: for a client already gone (~0.15 s of CPU each), and the suite shares two cores.
RESETS = 12
SHORT_NOISE = 4

#: Messages of the tiny-messages probe.
TINY_MESSAGES = 10_000

#: Bytes of the line with no end (over every line limit of the lab, which are 1 MiB at most).
ENDLESS_LINE = (1 << 20) + 4096

#: Seconds any one phase of a probe may take before it moves on.
PHASE_SECONDS = 3.0

#: Largest UDP payload over IPv4 (RFC 768, RFC 791).
MAX_DATAGRAM = 65_507


def rng(probe: str, ep: BoundEndpoint) -> random.Random:
    """A generator seeded by the probe and endpoint (a failure replays the same bytes)."""
    return random.Random(f"{probe}:{ep.name}")


def _nonblocking(ep: BoundEndpoint) -> socket.socket:
    family = socket.AF_INET6 if ":" in ep.address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def _held() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _connect(ep: BoundEndpoint, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(ep.sockaddr, timeout=timeout)


def _send_bounded(sock: socket.socket, data: bytes, seconds: float = PHASE_SECONDS) -> int:
    """Send as much of ``data`` as the peer takes within ``seconds``; stop if it closes."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    view = memoryview(data)
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += sock.send(view[sent : sent + 65536])
        except BlockingIOError:
            _drain(sock)
            time.sleep(0.005)
        except OSError:  # closed or reset by the server: it refused, as it may
            break
    return sent


def _drain(sock: socket.socket, limit: int = 1 << 22) -> int:
    """Read what has arrived without waiting; return the bytes read (0 also on EOF)."""
    got = 0
    while got < limit:
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        if not chunk:
            break
        got += len(chunk)
    return got


def wait_closed(sock: socket.socket, seconds: float) -> bool:
    """Read and discard until the peer closes (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    sock.setblocking(True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:  # reset: closed too
            return True


def _rst(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER on, zero seconds)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def client_hello(server_name: str = "localhost") -> bytes:
    """A real TLS ClientHello from the local OpenSSL (what a browser's first flight is)."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _udp_socket(ep: BoundEndpoint) -> socket.socket:
    sock = socket.socket(
        socket.AF_INET6 if ":" in ep.address else socket.AF_INET, socket.SOCK_DGRAM
    )
    sock.connect(ep.sockaddr)
    sock.setblocking(False)
    return sock


def _send_datagram(sock: socket.socket, data: bytes) -> None:
    try:
        sock.send(data)
    except BlockingIOError:
        time.sleep(0.001)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOBUFS):
            raise


# -- the probes -------------------------------------------------------------------------------


def random_bytes(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """Random bytes: one connection (or burst of datagrams) of noise, and a few short ones."""
    gen = rng("random_bytes", ep)
    if ep.protocol == "udp":
        with _udp_socket(ep) as sock:
            for _ in range(256):
                _send_datagram(sock, gen.randbytes(gen.randrange(1, 2048)))
                _drain(sock)
            _send_datagram(sock, gen.randbytes(MAX_DATAGRAM))
            during("while random datagrams arrive")
            _drain(sock)
        return
    with _held() as socks:
        noisy = _connect(ep)
        socks.append(noisy)
        _send_bounded(noisy, gen.randbytes(64 << 10))
        for _ in range(SHORT_NOISE):
            short = _connect(ep)
            socks.append(short)
            _send_bounded(short, gen.randbytes(gen.randrange(1, 512)), 0.5)
        during("while connections hold random bytes")


def endless_line(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """A line with no end: over a MiB with no newline (a maximal datagram over UDP)."""
    if ep.protocol == "udp":
        with _udp_socket(ep) as sock:
            _send_datagram(sock, b"A" * MAX_DATAGRAM)
            during("after a 65,507-byte datagram with no newline")
            _drain(sock)
        return
    with _connect(ep) as sock:
        _send_bounded(sock, b"A" * ENDLESS_LINE)
        during("while a line of a MiB with no end is open")


def tiny_messages(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """Ten thousand tiny messages: 2-byte writes on one connection, or 1-byte datagrams."""
    deadline = time.monotonic() + 2 * PHASE_SECONDS
    half = TINY_MESSAGES // 2
    if ep.protocol == "udp":
        with _udp_socket(ep) as sock:
            for i in range(TINY_MESSAGES):
                if time.monotonic() > deadline:
                    break
                _send_datagram(sock, b"?")
                if i % 64 == 0:
                    _drain(sock)
                if i == half:
                    during(f"amid {TINY_MESSAGES:,} one-byte datagrams")
            _drain(sock)
        return
    with _connect(ep) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        for i in range(TINY_MESSAGES):
            if time.monotonic() > deadline:
                break
            try:
                sock.send(b"?\n")
            except BlockingIOError:
                _drain(sock)
                time.sleep(0.001)
            except OSError:  # the server had enough and closed: allowed
                break
            if i % 64 == 0:
                _drain(sock)
            if i == half:
                during(f"amid {TINY_MESSAGES:,} two-byte writes")
        _drain(sock)


def half_open(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """Half-open connections (shutdown of our sending side); the server must close them."""
    if ep.protocol == "udp":
        return  # no connections over UDP
    gen = rng("half_open", ep)
    with _held() as socks:
        for payload in (b"", gen.randbytes(5), b"?", gen.randbytes(300)):
            sock = _connect(ep)
            socks.append(sock)
            if payload:
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        during("while four half-open connections wait")
        limit = served_within()
        open_still = [i for i, sock in enumerate(socks) if not wait_closed(sock, limit)]
        assert not open_still, (
            f"{ep.name}: the server kept half-open connection(s) {open_still} open {limit:g} s "
            "after our end of file"
        )


def reset(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """Connections reset (SO_LINGER 0): at once, after some bytes, mid-handshake for TLS."""
    if ep.protocol == "udp":
        return
    gen = rng("reset", ep)
    hello = client_hello() if ep.tls else b""
    for i in range(RESETS):
        sock = _connect(ep)
        try:
            if i % 3 == 1:
                sock.sendall(gen.randbytes(gen.randrange(1, 256)))
            elif i % 3 == 2 and hello:
                sock.sendall(hello[: len(hello) // 2])
            elif i % 3 == 2:
                sock.sendall(b"?")
        finally:
            _rst(sock)
        if i == RESETS // 2:
            during("amid reset connections")


def slowloris(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """A few hundred connections that each send one byte now and then (a ClientHello for TLS)."""
    if ep.protocol == "udp":
        return
    dribble = client_hello() if ep.tls else b"GET /" + b"a" * 64
    with _held() as socks, selectors.DefaultSelector() as sel:
        for _ in range(SLOWLORIS_CONNECTIONS):
            sock = _nonblocking(ep)
            socks.append(sock)
            err = sock.connect_ex(ep.sockaddr)
            if err not in (0, errno.EINPROGRESS):
                continue
            sel.register(sock, selectors.EVENT_WRITE)
        connected: list[socket.socket] = []
        deadline = time.monotonic() + 1.5
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(deadline - time.monotonic()):
                sock = key.fileobj  # type: ignore[assignment]
                sel.unregister(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.append(sock)
        assert connected, f"{ep.name}: none of {SLOWLORIS_CONNECTIONS} connections was accepted"
        ticks = round(SLOWLORIS_SECONDS / SLOWLORIS_TICK)
        alive = connected
        for tick in range(ticks):
            started = time.monotonic()
            still = []
            for sock in alive:
                try:
                    sock.send(dribble[tick % len(dribble) : tick % len(dribble) + 1])
                except BlockingIOError:
                    still.append(sock)
                except OSError:
                    continue  # the server dropped it: allowed
                else:
                    still.append(sock)
            alive = still
            if tick in (1, ticks - 1):
                during(
                    f"while {len(alive)} of {SLOWLORIS_CONNECTIONS} slow connections dribble"
                    f" (tick {tick + 1} of {ticks})"
                )
            time.sleep(max(0.0, SLOWLORIS_TICK - (time.monotonic() - started)))


def tls_plaintext(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """Plaintext on a TLS port: the server must close at once and send no handshake."""
    with _connect(ep) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        limit = served_within()
        head = _read_some(sock, 5, limit)
        during("after plaintext on a TLS port")
        assert not head.startswith(b"\x16"), f"{ep.name}: answered plaintext with a handshake"
        assert wait_closed(sock, limit), f"{ep.name}: kept plaintext open for {limit:g} s"


def _read_some(sock: socket.socket, size: int, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    sock.setblocking(True)
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(size - len(data))
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


#: TLS cipher suites a TLS 1.0/1.1 client offered (RFC 5246, RFC 4492): ECDHE and RSA, CBC.
_OLD_SUITES = (0xC013, 0xC014, 0xC009, 0xC00A, 0x002F, 0x0035, 0x000A)


def raw_client_hello(version: int, server_name: str = "localhost") -> bytes:
    """A TLS ClientHello offering at most ``version`` (0x0301 TLS 1.0, 0x0302 TLS 1.1).

    Built by hand (RFC 2246 / RFC 4346 section 7.4.1.2), so it does not depend on what the
    local OpenSSL is still willing to send.
    """
    name = server_name.encode("ascii")
    sni = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    groups = struct.pack("!HHH", 4, 0x0017, 0x0018)  # secp256r1, secp384r1
    extensions = (
        struct.pack("!HH", 0x0000, len(sni))
        + sni
        + struct.pack("!HH", 0x000A, len(groups))
        + groups
        + struct.pack("!HHBB", 0x000B, 2, 1, 0)  # ec_point_formats: uncompressed
        + struct.pack("!HH", 0xFF01, 1)  # renegotiation_info, empty
        + b"\x00"
    )
    suites = b"".join(struct.pack("!H", s) for s in _OLD_SUITES)
    body = (
        struct.pack("!H", version)
        + bytes(range(32))  # random (fixed: this hello is never finished)
        + b"\x00"  # no session id
        + struct.pack("!H", len(suites))
        + suites
        + b"\x01\x00"  # compression: null
        + struct.pack("!H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16" + struct.pack("!HH", 0x0301, len(handshake)) + handshake


def tls_old_versions(state: LabState, ep: BoundEndpoint, during: During) -> None:
    """TLS 1.0 and 1.1 ClientHellos (raw, and from OpenSSL where it still sends them)."""
    for version, label in ((0x0301, "TLS 1.0"), (0x0302, "TLS 1.1")):
        with _connect(ep) as sock:
            sock.sendall(raw_client_hello(version))
            limit = served_within()
            head = _read_some(sock, 6, limit)
            # A refusal is an alert (21) or a close; a ServerHello (22) would accept it.
            assert not head.startswith(b"\x16"), (
                f"{ep.name}: answered a {label} ClientHello with a handshake: {head.hex()}"
            )
            assert wait_closed(sock, limit), f"{ep.name}: kept a refused {label} connection open"
        during(f"after a raw {label} ClientHello")
    for tls_version, label in (
        (ssl.TLSVersion.TLSv1, "TLS 1.0"),
        (ssl.TLSVersion.TLSv1_1, "TLS 1.1"),
    ):
        context = state.ssl_context()
        try:
            with warnings.catch_warnings():  # deprecated: that is the point of the probe
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = tls_version
                context.maximum_version = tls_version
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            continue  # this OpenSSL cannot be asked for it; the raw hello above covered it
        with _connect(ep) as sock:
            try:
                with context.wrap_socket(sock, server_hostname="localhost") as tls:
                    agreed = tls.version()
            except ssl.SSLError as exc:
                if "NO_PROTOCOLS_AVAILABLE" in str(exc) or "no protocols available" in str(exc):
                    continue  # the local OpenSSL refused to send it at all
            except OSError:
                pass  # refused by a close or a reset: fine
            else:
                raise AssertionError(f"{ep.name}: completed a {label} handshake ({agreed})")
        during(f"after OpenSSL's {label} ClientHello")


#: Every generic probe, by name: each runs against every endpoint of every service.
PROBES: dict[str, Probe] = {
    "random_bytes": random_bytes,
    "endless_line": endless_line,
    "tiny_messages": tiny_messages,
    "half_open": half_open,
    "reset": reset,
    "slowloris": slowloris,
}

#: Probes of TLS endpoints only.
TLS_PROBES: dict[str, Probe] = {
    "tls_plaintext": tls_plaintext,
    "tls_old_versions": tls_old_versions,
}
