"""Message framing over a byte stream: sans-I/O cores, in the style of h11 (no RFC).

TCP delivers a stream of bytes, not messages; a protocol that sends messages over it must
mark where each one ends. This module holds the length prefix of the book's ``blocks.py``
as a core that never touches a socket, a clock or an event loop:

* :class:`LengthPrefixFramer`: each message is preceded by its length, four bytes big-endian
  (``struct`` format ``!I``).

(Messages that end with a delimiter, the Zen server's ``?``, are split by Zen's own core,
:mod:`wirelab.zen._core`, measured faster for its pipelined questions: decision 0050.)

Its verbs follow h11: :meth:`receive_data` takes bytes as they arrive
(``b""`` means end of file), :meth:`next_message` returns one complete message, or
:data:`NEED_DATA`, or :data:`END` once the stream ended cleanly between two messages, and
:meth:`frame` turns a message into the bytes to send. The adapters in
:mod:`wirelab.net.streams` connect them to blocking sockets and asyncio streams.

What this fixes from the book:

* ``blocks.py`` wrote with ``send()`` (which may write only part of a buffer; the adapters
  use ``sendall``) and believed any length a peer announced. Here a header announcing more
  than ``max_size`` is refused before a byte of its payload is buffered.

Errors: the peer's mistakes raise :class:`~wirelab.errors.RemoteProtocolError` (a message
over the limit, end of file in the middle of a message), and the framer stays failed: every
later :meth:`next_message` raises the same complaint again. The caller's mistakes raise
:class:`~wirelab.errors.LocalProtocolError` (framing a message that cannot be framed, feeding
data after end of file). Nothing else escapes from a framer: any bytes give messages or a
protocol error.
"""

from __future__ import annotations

import enum
import struct
from typing import Final, Literal, Protocol, TypeAlias

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from wirelab.net.limits import DEFAULT_MAX_MESSAGE

__all__ = [
    "END",
    "HEADER",
    "NEED_DATA",
    "Event",
    "Framer",
    "LengthPrefixFramer",
    "Sentinel",
]


class Sentinel(enum.Enum):
    """The two non-message results of ``next_message()``; compare them with ``is``."""

    NEED_DATA = "NEED_DATA"
    END = "END"

    def __repr__(self) -> str:
        return self.value


#: No complete message yet: feed more bytes with ``receive_data()``.
NEED_DATA: Final = Sentinel.NEED_DATA
#: The peer closed the stream cleanly, at a message boundary. Returned again on every call.
END: Final = Sentinel.END

#: What ``next_message()`` returns: a complete message, NEED_DATA or END.
Event: TypeAlias = bytes | Literal[Sentinel.NEED_DATA, Sentinel.END]

#: The length prefix of :class:`LengthPrefixFramer`: 4 bytes, unsigned, network byte order.
HEADER: Final = struct.Struct("!I")


class Framer(Protocol):
    """What the stream adapters need from a framer (:class:`LengthPrefixFramer` is one)."""

    @property
    def buffered(self) -> int:
        """Bytes received and held, not yet returned as messages."""
        ...

    @property
    def eof(self) -> bool:
        """Whether end of file (``receive_data(b"")``) has been received."""
        ...

    def receive_data(self, data: bytes) -> None:
        """Take bytes as they arrived; ``b""`` means end of file."""
        ...

    def next_message(self) -> Event:
        """Return the next complete message, NEED_DATA or END."""
        ...

    def frame(self, message: bytes) -> bytes:
        """Return the bytes that carry ``message`` on the wire."""
        ...


class _Buffered:
    """The receive buffer of a framer: a bytearray, an offset and the EOF flag.

    Consumed bytes are not cut off one message at a time (that would copy the rest each
    time); ``_start`` moves forward instead, and the buffer is compacted only when the
    framer runs out of complete messages.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ConfigError(f"max_size must be at least 0, not {max_size}")
        self._max_size = max_size
        self._buf = bytearray()
        self._start = 0
        self._eof = False
        self._failure: str | None = None

    @property
    def max_size(self) -> int:
        """The largest message, in bytes, this framer accepts or frames."""
        return self._max_size

    @property
    def buffered(self) -> int:
        """Bytes received and held, not yet returned as messages."""
        return len(self._buf) - self._start

    @property
    def eof(self) -> bool:
        """Whether end of file (``receive_data(b"")``) has been received."""
        return self._eof

    def receive_data(self, data: bytes) -> None:
        """Take bytes as they arrived from the peer; ``b""`` means end of file.

        Nothing is parsed here; call :meth:`next_message` until it returns NEED_DATA. After
        the framer has failed, further bytes are dropped (the stream cannot be resynchronised).

        Raises:
            LocalProtocolError: bytes after end of file; the caller fed a closed stream.
        """
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() called with more bytes after end of file")
        if self._failure is None:
            self._buf += data

    def _check_failed(self) -> None:
        if self._failure is not None:
            raise RemoteProtocolError(self._failure)

    def _fail(self, reason: str) -> RemoteProtocolError:
        self._failure = reason
        self._buf = bytearray()  # nothing more can be read from this stream: free it
        self._start = 0
        return RemoteProtocolError(reason)

    def _compact(self) -> int:
        """Drop consumed bytes from the front of the buffer; return how many were dropped."""
        dropped = self._start
        if dropped:
            del self._buf[:dropped]
            self._start = 0
        return dropped


class LengthPrefixFramer(_Buffered):
    """Messages preceded by their length: 4 bytes, unsigned, big-endian (``struct`` ``!I``).

    A zero-length message is a message like any other; what it means (the book's blocks
    protocol uses one to end a stream) is for the application to say.

    Args:
        max_size: the longest payload accepted or framed (at most 2**32 - 1).

    Raises:
        ConfigError: ``max_size`` is negative or does not fit in the header.
    """

    def __init__(self, *, max_size: int = DEFAULT_MAX_MESSAGE) -> None:
        if max_size > 0xFFFF_FFFF:
            raise ConfigError(f"max_size {max_size} does not fit in a 4-byte length")
        super().__init__(max_size)
        self._size: int | None = None  # the announced length, once its header is consumed

    def next_message(self) -> Event:
        """Return the next complete message, or NEED_DATA, or END.

        Raises:
            RemoteProtocolError: a header announced more than ``max_size`` bytes (raised as
                soon as its four bytes arrive), or the peer closed mid-header or mid-message.
        """
        self._check_failed()
        buf = self._buf
        if self._size is None:
            if self.buffered < HEADER.size:
                return self._starved(f"{self.buffered} of {HEADER.size} header bytes")
            (size,) = HEADER.unpack_from(buf, self._start)
            if size > self._max_size:
                raise self._fail(
                    f"peer announced a message of {size} bytes; the limit is {self._max_size}"
                )
            self._size = size
            self._start += HEADER.size
        if self.buffered < self._size:
            return self._starved(f"{self.buffered} of {self._size} bytes")
        end = self._start + self._size
        message = bytes(buf[self._start : end])
        self._start, self._size = end, None
        return message

    def _starved(self, progress: str) -> Event:
        self._compact()
        if not self._eof:
            return NEED_DATA
        if self.buffered or self._size is not None:
            raise self._fail(f"peer closed mid-message (after {progress})")
        return END

    def frame(self, message: bytes) -> bytes:
        """Return the 4-byte length of ``message`` followed by ``message``.

        Raises:
            LocalProtocolError: the message is over ``max_size``.
        """
        if len(message) > self._max_size:
            raise LocalProtocolError(
                f"message of {len(message)} bytes is over the limit of {self._max_size}"
            )
        return HEADER.pack(len(message)) + message
