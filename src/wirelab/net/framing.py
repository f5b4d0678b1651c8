"""Message framing over a byte stream: sans-I/O cores, in the style of h11 (no RFC).

TCP delivers a stream of bytes, not messages; a protocol that sends messages over it must
mark where each one ends. This module holds the two ways the book does it, as cores that
never touch a socket, a clock or an event loop:

* :class:`DelimiterFramer`: each message ends with a delimiter (``b"?"`` for the Zen
  questions, ``b"\\n"`` for lines).
* :class:`LengthPrefixFramer`: each message is preceded by its length, four bytes big-endian
  (``struct`` format ``!I``), as in the book's ``blocks.py``.

Both have the same verbs, after h11: :meth:`receive_data` takes bytes as they arrive
(``b""`` means end of file), :meth:`next_message` returns one complete message, or
:data:`NEED_DATA`, or :data:`END` once the stream ended cleanly between two messages, and
:meth:`frame` turns a message into the bytes to send. The adapters in
:mod:`wirelab.net.streams` connect them to blocking sockets and asyncio streams.

What this fixes from the book:

* The Zen server's ``recv_until`` only checked that the buffer *ended with* the delimiter, so
  two questions arriving in one segment (``b"Beautiful is better than?Simple is better
  than?"``) were taken for one; bytes after a delimiter were lost; and the buffer grew
  without bound while waiting. Here every delimiter is found, leftovers wait for the next
  call, the search resumes where it stopped (linear, never quadratic), and a message over
  ``max_size`` is refused as soon as the buffer proves it, not when its delimiter arrives.
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
    "DelimiterFramer",
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
    """What the stream adapters need from a framer (both framers here satisfy it)."""

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
    """The receive buffer both framers share: a bytearray, an offset and the EOF flag.

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


class DelimiterFramer(_Buffered):
    """Messages that each end with a delimiter, such as ``b"?"`` or ``b"\\r\\n"``.

    Args:
        delimiter: the bytes that end every message (not empty).
        max_size: the longest message accepted or framed, not counting the delimiter.
        include_delimiter: return messages with their delimiter still attached.

    Raises:
        ConfigError: an empty delimiter or a negative ``max_size``.
    """

    def __init__(
        self,
        delimiter: bytes,
        *,
        max_size: int = DEFAULT_MAX_MESSAGE,
        include_delimiter: bool = False,
    ) -> None:
        if not delimiter:
            raise ConfigError("the delimiter must not be empty")
        super().__init__(max_size)
        self._delimiter = bytes(delimiter)
        self._include = include_delimiter
        self._scan = 0  # no delimiter starts in buf[_start:_scan]: resume the search here

    @property
    def delimiter(self) -> bytes:
        """The bytes that end every message."""
        return self._delimiter

    def next_message(self) -> Event:
        """Return the next complete message, or NEED_DATA, or END.

        Raises:
            RemoteProtocolError: the pending message is over ``max_size`` (raised as soon as
                ``max_size + len(delimiter)`` bytes hold no delimiter), or the peer closed in
                the middle of a message.
        """
        self._check_failed()
        buf, width = self._buf, len(self._delimiter)
        # A delimiter must end within max_size + width bytes of the message's start.
        limit = self._start + self._max_size + width
        found = buf.find(self._delimiter, self._scan, limit)
        if found >= 0:
            end = found + width
            message = bytes(buf[self._start : end if self._include else found])
            self._start = self._scan = end
            return message
        if len(buf) >= limit:
            raise self._fail(
                f"message over {self._max_size} bytes without a delimiter {self._delimiter!r}"
            )
        # The last width-1 bytes may be the start of a delimiter: search them again next time.
        scan = max(self._scan, len(buf) - width + 1)
        self._scan = scan - self._compact()
        if not self._eof:
            return NEED_DATA
        if self.buffered:
            raise self._fail(
                f"peer closed mid-message ({self.buffered} bytes without a delimiter "
                f"{self._delimiter!r})"
            )
        return END

    def frame(self, message: bytes) -> bytes:
        """Return ``message`` followed by the delimiter.

        Raises:
            LocalProtocolError: the message is over ``max_size``, or it contains the
                delimiter, or it ends with bytes that would run into the delimiter (with
                ``b"aa"`` as delimiter, ``b"xa"`` would read back as ``b"x"``).
        """
        if len(message) > self._max_size:
            raise LocalProtocolError(
                f"message of {len(message)} bytes is over the limit of {self._max_size}"
            )
        framed = bytes(message) + self._delimiter
        if framed.find(self._delimiter) != len(message):
            raise LocalProtocolError(
                f"message contains the delimiter {self._delimiter!r}; it cannot be framed"
            )
        return framed


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
