"""ZeroMQ socket helpers shared by the pipeline, the pythagoras service and the lab.

Every socket gets ``LINGER 0`` (closing never waits for unsent messages, so shutdown cannot
hang) and ``MAXMSGSIZE`` (a peer that sends a bigger message is disconnected before the
message is read into memory). Endpoints are either ``tcp://host:port`` (port ``*`` for an
ephemeral one, read back from ``LAST_ENDPOINT``) or ``inproc://name`` (threads of one
process, same context).
"""

from __future__ import annotations

import zmq

from wirelab.errors import ConfigError
from wirelab.queue._codec import MAX_MESSAGE

__all__ = ["POLL_MS", "bind", "make_socket", "tcp_endpoint"]

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


def bind(sock: zmq.Socket[bytes], endpoint: str) -> str:
    """Bind ``sock`` and return the real endpoint (with the port the OS chose).

    Raises:
        ConfigError: the endpoint is malformed or cannot be bound (port in use ...).
    """
    if endpoint.startswith("tcp://[") or endpoint.startswith("tcp://::"):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot bind {endpoint}: {exc.strerror}") from exc
    last = sock.getsockopt(zmq.LAST_ENDPOINT)
    return last.decode() if isinstance(last, bytes) else str(last)


def connect(sock: zmq.Socket[bytes], endpoint: str) -> None:
    """Connect ``sock`` (asynchronously: ZeroMQ queues messages until the peer is there).

    Raises:
        ConfigError: the endpoint is malformed.
    """
    if endpoint.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"cannot connect to {endpoint}: {exc.strerror}") from exc
