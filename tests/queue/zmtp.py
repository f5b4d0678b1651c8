"""A test-only ZMTP 3.0 speaker on a plain socket (rfc.zeromq.org/spec/23), for hostile peers.

Just enough to send a valid greeting and READY and then any frames we like (too many, empty,
over the size limit), which no ZeroMQ library would let us send.
"""

from __future__ import annotations

import socket
import struct

#: Flag bits of a ZMTP 3 frame header.
MORE, LONG, COMMAND = 0x01, 0x02, 0x04


def greeting(mechanism: bytes = b"NULL", as_server: bool = False) -> bytes:
    """The 64-byte ZMTP greeting: signature, version 3.1, mechanism, as-server, filler."""
    head = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x01"
    return head + mechanism.ljust(20, b"\x00") + bytes([as_server]) + b"\x00" * 31


def frame(body: bytes, *, more: bool = False, command: bool = False) -> bytes:
    """One frame, short or long as its size needs."""
    flags = (MORE if more else 0) | (COMMAND if command else 0)
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def ready(socket_type: bytes = b"REQ") -> bytes:
    """The NULL mechanism's READY command with a Socket-Type property."""
    prop = bytes([11]) + b"Socket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    return frame(b"\x05READY" + prop, command=True)


def message(*parts: bytes) -> bytes:
    """A multipart message: every frame but the last has MORE."""
    return b"".join(frame(p, more=i < len(parts) - 1) for i, p in enumerate(parts))


def long_frame_header(size: int) -> bytes:
    """The header of a long frame announcing ``size`` bytes (send no body, or part of one)."""
    return bytes([LONG]) + struct.pack(">Q", size)


def open_raw(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A plain TCP connection."""
    return socket.create_connection((host, port), timeout=timeout)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"the peer closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def handshake(sock: socket.socket, socket_type: bytes = b"REQ") -> None:
    """Greet, read the peer's greeting, send READY and read the peer's READY.

    (libzmq hangs up on a peer whose greeting and first frames arrive in one segment before
    its own greeting went out, so a test that means to reach the message layer waits.)
    """
    sock.sendall(greeting())
    _read_exactly(sock, 64)
    sock.sendall(ready(socket_type))
    flags, size = _read_exactly(sock, 2)
    _read_exactly(sock, struct.unpack(">Q", _read_exactly(sock, 8))[0] if flags & LONG else size)


def read_message(sock: socket.socket) -> list[bytes]:
    """One multipart message (commands skipped)."""
    parts: list[bytes] = []
    while True:
        flags = _read_exactly(sock, 1)[0]
        if flags & LONG:
            size = struct.unpack(">Q", _read_exactly(sock, 8))[0]
        else:
            size = _read_exactly(sock, 1)[0]
        body = _read_exactly(sock, size)
        if flags & COMMAND:
            continue
        parts.append(body)
        if not flags & MORE:
            return parts
