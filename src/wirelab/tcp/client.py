"""The chapter 3 sixteen client (transport layer, RFC 9293): exact-length send and receive.

TCP is a stream, not a series of messages: one ``send`` may go out as several segments and
one ``recv`` may return any part of what arrived. So the client sends with ``sendall`` and
reads with :func:`~wirelab.net.streams.recv_exactly`, which loops until it has all 16 bytes
and raises :class:`~wirelab.errors.Broken` if the server closes first (F13).
"""

from __future__ import annotations

from dataclasses import dataclass

from wirelab.errors import LocalProtocolError
from wirelab.net.addresses import connect_tcp, format_address
from wirelab.net.limits import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT
from wirelab.net.streams import map_os_error, recv_exactly
from wirelab.tcp._core import MESSAGE_SIZE, REQUEST

__all__ = ["SixteenReply", "exchange"]


@dataclass(frozen=True)
class SixteenReply:
    """The server's 16 bytes and the names of both ends.

    Attributes:
        reply: exactly 16 bytes from the server.
        local: our socket name (the address and ephemeral port the OS gave us).
        server: our socket's peer name (the server's address).
    """

    reply: bytes
    local: str
    server: str

    @property
    def text(self) -> str:
        """The reply as text (bytes that are not UTF-8 are shown as replacement characters)."""
        return self.reply.decode("utf-8", errors="replace")

    def to_json(self) -> dict[str, object]:
        """The ``--json`` form."""
        return {"reply": self.text, "local": self.local, "server": self.server}


def exchange(
    host: str,
    port: int | str,
    message: bytes = REQUEST,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> SixteenReply:
    """Send a 16-byte ``message`` and read the server's 16-byte reply.

    Raises:
        LocalProtocolError: ``message`` is not exactly 16 bytes.
        Broken: the server closed or reset the connection before 16 bytes came back.
        Timeout: the server did not answer within ``timeout`` seconds.
        NameResolutionError, ConnectionRefused, ConnectError: no connection.
    """
    if len(message) != MESSAGE_SIZE:
        raise LocalProtocolError(
            f"the sixteen exchange sends exactly {MESSAGE_SIZE} bytes, not {len(message)}"
        )
    with connect_tcp(host, port, timeout=connect_timeout) as sock:
        sock.settimeout(timeout)
        local = format_address(sock.getsockname())
        server = format_address(sock.getpeername())
        try:
            sock.sendall(message)
        except OSError as exc:
            raise map_os_error(exc, f"sending to {server}") from exc
        reply = recv_exactly(sock, MESSAGE_SIZE)
    return SixteenReply(reply, local, server)
