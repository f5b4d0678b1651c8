"""Named limits and timeouts, in one place, each with the arithmetic or the RFC behind it.

Every buffer, line, message and connection in wirelab has a limit and a timeout. Servers and
clients take these as constructor arguments; the values here are only the defaults.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_MESSAGE",
    "DEFAULT_TIMEOUT",
    "MAX_UDP_PAYLOAD",
    "RECV_CHUNK",
]

#: Largest payload of one UDP datagram over IPv4: 65,535 (IP total length) - 20 (IP header)
#: - 8 (UDP header) = 65,507 bytes (RFC 768, RFC 791).
MAX_UDP_PAYLOAD = 65_507

#: Largest framed message we accept by default (length-prefixed or delimited): 1 MiB.
DEFAULT_MAX_MESSAGE = 1 << 20

#: Bytes asked of the kernel per ``recv`` call.
RECV_CHUNK = 64 << 10

#: Seconds allowed for a TCP connect or a TLS handshake.
DEFAULT_CONNECT_TIMEOUT = 5.0

#: Seconds allowed for one read or write on an established connection.
DEFAULT_TIMEOUT = 10.0

#: Seconds a server keeps a connection that sends nothing.
DEFAULT_IDLE_TIMEOUT = 60.0

#: Connections one server keeps open at once before it stops accepting.
DEFAULT_MAX_CONNECTIONS = 20_000
