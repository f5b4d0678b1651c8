"""ZeroMQ socket helpers shared by the pipeline, the pythagoras service and the lab.

Every socket gets ``LINGER 0`` (closing never waits for unsent messages, so shutdown cannot
hang) and ``MAXMSGSIZE`` (a peer that sends a bigger message is disconnected before the
message is read into memory). Endpoints are either ``tcp://host:port`` (port ``*`` for an
ephemeral one, read back from ``LAST_ENDPOINT``) or ``inproc://name`` (threads of one
process, same context).
"""

from __future__ import annotations

import errno

import zmq

from wirelab.errors import ConfigError, ConnectError
from wirelab.queue._codec import MAX_MESSAGE

__all__ = ["POLL_MS", "bind", "check_endpoint", "connect", "make_socket", "tcp_endpoint"]

#: Longest endpoint we accept (a host name is at most 253 characters; ipc paths ~108).
MAX_ENDPOINT = 300
#: bind() errors that mean "not here, not now" (a runtime failure), not a malformed endpoint.
_BIND_FAILURES = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)

#: Milliseconds a loop waits for a message before it looks at its stop flag again.
POLL_MS = 50


def make_socket(context: zmq.Context[zmq.Socket[bytes]], kind: int) -> zmq.Socket[bytes]:
    """A socket with our limits: no linger, and messages over MAX_MESSAGE refused."""
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
    return sock


def tcp_endpoint(host: str, port: int | None) -> str:
    """``tcp://127.0.0.1:6700``; port ``None`` or 0 gives ``*`` (an ephemeral port)."""
    where = f"[{host}]" if ":" in host else host
    return f"tcp://{where}:{port if port else '*'}"


def check_endpoint(endpoint: str) -> str:
    """Refuse an endpoint libzmq would misread: it returns ``endpoint`` or raises ConfigError.

    ``tcp://HOST:PORT`` (PORT 0-65535 or ``*``; libzmq itself would wrap 70000 to 4464),
    ``ipc://PATH`` or ``inproc://NAME``.
    """
    shown = endpoint if len(endpoint) <= 60 else endpoint[:40] + "..."
    if len(endpoint) > MAX_ENDPOINT or any(ord(c) < 0x21 or c == "\x7f" for c in endpoint):
        raise ConfigError(f"{shown!r} is not a ZeroMQ endpoint")
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc", "inproc") or not rest:
        raise ConfigError(
            f"{shown!r} is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://, inproc://)"
        )
    if scheme != "tcp":
        return endpoint
    host, colon, port = rest.rpartition(":")
    if not colon or not host or host == "[]":
        raise ConfigError(f"{shown!r} needs a host and a port: tcp://HOST:PORT")
    if port != "*" and not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise ConfigError(f"{shown!r}: the port must be a number 0-65535 or *")
    if port != "*" and int(port) > 65535:
        raise ConfigError(f"{shown!r}: port {port} is out of range 0-65535")
    return endpoint


def bind(sock: zmq.Socket[bytes], endpoint: str) -> str:
    """Bind ``sock`` and return the real endpoint (with the port the OS chose).

    Raises:
        ConfigError: the endpoint is malformed.
        ConnectError: it cannot be bound here (port in use, address not ours, no permission).
    """
    check_endpoint(endpoint)
    if endpoint.startswith("tcp://[") or endpoint.startswith("tcp://::"):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        error = ConnectError if exc.errno in _BIND_FAILURES else ConfigError
        raise error(f"cannot bind {endpoint}: {_reason(exc)}") from exc
    last = sock.getsockopt(zmq.LAST_ENDPOINT)
    return last.decode() if isinstance(last, bytes) else str(last)


def connect(sock: zmq.Socket[bytes], endpoint: str) -> None:
    """Connect ``sock`` (asynchronously: ZeroMQ queues messages until the peer is there).

    Raises:
        ConfigError: the endpoint is malformed.
    """
    check_endpoint(endpoint)
    if endpoint.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to {endpoint}: {_reason(exc)}") from exc


def _reason(exc: zmq.ZMQError) -> str:
    """libzmq's text for the error, without pyzmq's ``(addr=...)`` suffix."""
    return zmq.strerror(exc.errno) if exc.errno is not None else str(exc)
