"""The one exception tree of wirelab.

Every error a wirelab library call raises on purpose is a :class:`WirelabError`. Lower-level
errors (``OSError``, ``ssl.SSLError``, ``socket.gaierror``, library exceptions) are converted
at the seam where they happen, always with ``raise ... from exc`` so the cause is kept::

    WirelabError
    ├── ConfigError              bad settings or arguments, a lab that is not running
    ├── ServiceUnavailable       a lab service cannot run here (missing binary ...)
    ├── TransportError           the network, below the protocol
    │   ├── NameResolutionError  the name service failed (no such host, no such service)
    │   ├── ConnectError         the name resolved but no connection could be made
    │   │   └── ConnectionRefused   the peer actively refused (RST / ICMP unreachable)
    │   ├── Timeout              a deadline passed
    │   ├── Closed               we closed it
    │   ├── Broken               the peer or the network broke it (reset, EOF mid-message)
    │   └── TLSError             the TLS handshake or verification failed
    └── ProtocolError            the bytes broke the protocol's rules
        ├── LocalProtocolError   we erred (e.g. a message over the limit we would send)
        └── RemoteProtocolError  the peer erred (e.g. it announced a frame over the limit)

``ProtocolError`` carries ``code`` where the protocol has reply codes (SMTP 5xx, FTP ...).
The CLI catches ``WirelabError`` at the top, prints one line and exits 1; usage errors exit 2.
"""

from __future__ import annotations

__all__ = [
    "Broken",
    "Closed",
    "ConfigError",
    "ConnectError",
    "ConnectionRefused",
    "LocalProtocolError",
    "NameResolutionError",
    "ProtocolError",
    "RemoteProtocolError",
    "ServiceUnavailable",
    "TLSError",
    "Timeout",
    "TransportError",
    "WirelabError",
]


class WirelabError(Exception):
    """Base class of every error wirelab raises on purpose."""


class ConfigError(WirelabError):
    """Bad settings or arguments, or a lab that is not there when one is needed."""


class ServiceUnavailable(WirelabError):
    """A lab service cannot run on this machine; the message says how to fix it."""


class TransportError(WirelabError):
    """The network failed below the protocol."""


class NameResolutionError(TransportError):
    """The name service could not turn a host or service name into an address."""


class ConnectError(TransportError):
    """An address was found but no connection could be made to it."""


class ConnectionRefused(ConnectError):
    """The peer refused: a TCP RST, or ICMP port unreachable on a connected UDP socket."""


class Timeout(TransportError):
    """A deadline passed before the operation finished."""


class Closed(TransportError):
    """The operation needed a connection that we had already closed."""


class Broken(TransportError):
    """The peer or the network broke the connection (reset, or EOF in the middle of a message)."""


class TLSError(TransportError):
    """The TLS handshake failed, or the peer's certificate did not verify."""


class ProtocolError(WirelabError):
    """Bytes that break the protocol's rules.

    Attributes:
        code: the protocol's reply code, where it has one (an SMTP or FTP status ...).
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class LocalProtocolError(ProtocolError):
    """We were about to break the protocol (for example, send a message over the limit)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol (for example, it announced a frame over our limit)."""
