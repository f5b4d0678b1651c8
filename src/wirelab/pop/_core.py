"""POP3 (RFC 1939, with RFC 2449 CAPA and RFC 2595 STLS) as a sans-I/O core.

Two pieces, neither of which touches a socket or a file:

* :class:`CommandReader` turns received bytes, split anywhere, into :class:`Command` and
  :class:`BadLine` events. A line is at most :data:`MAX_LINE` bytes (RFC 2449 section 4
  allows 255 octets for a command line); a longer one is one ``BadLine`` and is skipped up
  to its end, never buffered.
* :class:`POP3Session` is the state machine (AUTHORIZATION, TRANSACTION, UPDATE). It answers
  each command with :class:`Reply` bytes and, where the outside world must act, an action:
  check a password (:class:`CheckPassword`, :class:`CheckApop`), start TLS, fetch a message,
  apply the deletions (:class:`Commit`, only after QUIT in the TRANSACTION state) or close.

The policy: USER/PASS only on a TLS connection (``-ERR [AUTH]`` before, as Dovecot says it);
APOP at any time (the password never crosses the wire); three failed logins close the
connection; messages marked with DELE are deleted only by :class:`Commit`, which the session
asks for only on QUIT, so a dropped connection deletes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_LINE",
    "BadLine",
    "CheckApop",
    "CheckPassword",
    "Close",
    "Command",
    "CommandReader",
    "Commit",
    "Fetch",
    "Listing",
    "POP3Session",
    "Reply",
    "StartTLS",
    "apop_digest",
    "encode_multiline",
    "uid_for",
]

#: The longest command line, CRLF included (RFC 2449 section 4: 255 octets).
MAX_LINE = 255
#: Failed logins before the session closes.
MAX_AUTH_FAILURES = 3


@dataclass(frozen=True)
class Command:
    """One command line: its keyword upper-cased, and its arguments (bytes, split on spaces)."""

    name: str
    args: tuple[bytes, ...]


@dataclass(frozen=True)
class BadLine:
    """A line that is not a command: too long, or not ASCII text."""

    reason: str


Event = Command | BadLine


class CommandReader:
    """Split received bytes into commands; bounded by :data:`MAX_LINE` whatever the peer sends."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data``."""
        events: list[Event] = []
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.max_line:
                    if not self._skipping:
                        events.append(BadLine("line too long"))
                    self._skipping = True
                    del self._buffer[:]
                return events
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) + 1 > self.max_line:
                events.append(BadLine("line too long"))
                continue
            events.append(parse_command(line.removesuffix(b"\r")))

    def discard(self) -> int:
        """Drop what is buffered (commands pipelined before STLS); how many bytes."""
        dropped = len(self._buffer)
        del self._buffer[:]
        self._skipping = False
        return dropped


def parse_command(line: bytes) -> Event:
    """One line without its end: ``KEYWORD [arg ...]``."""
    if any(b < 0x20 or b > 0x7E for b in line):
        return BadLine("not printable ASCII")
    parts = line.split(b" ")
    keyword = parts[0]
    if not (3 <= len(keyword) <= 4) or not keyword.isalpha():
        return BadLine("no command keyword")
    return Command(keyword.decode("ascii").upper(), tuple(part for part in parts[1:] if part))


def apop_digest(timestamp: bytes, secret: str) -> str:
    """The APOP digest of RFC 1939 section 7: MD5 of the greeting's timestamp and the secret."""
    return hashlib.md5(timestamp + secret.encode("utf-8"), usedforsecurity=False).hexdigest()


def uid_for(key: str) -> str:
    """A UIDL of the Maildir ``key``: the key itself when RFC 1939's 70 printable bytes allow."""
    if 0 < len(key) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in key):
        return key
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def encode_multiline(data: bytes, body_lines: int | None = None) -> bytes:
    """``data`` as a multi-line response body: lines CRLF-ended, dot-stuffed, ``.`` at the end.

    With ``body_lines`` (TOP), only the headers, the blank line and that many body lines.
    A whole message (RETR) is done with whole-buffer replaces, not line by line (a MiB is
    13,000 lines); the result is the same bytes (a property test compares the two).
    """
    if body_lines is not None:
        return _encode_lines(data, body_lines)
    body = data
    if body.count(b"\n") != body.count(b"\r\n"):  # bare LFs: make every line end CR LF
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if body and not body.endswith(b"\n"):  # an unterminated last line
        body = body.removesuffix(b"\r") + b"\r\n"
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def _encode_lines(data: bytes, body_lines: int | None = None) -> bytes:
    """:func:`encode_multiline` line by line (TOP, and the reference for RETR's)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[bytes] = []
    in_body = False
    taken = 0
    for raw in lines:
        line = raw.removesuffix(b"\r")
        if body_lines is not None and in_body:
            if taken >= body_lines:
                break
            taken += 1
        if not in_body and line == b"":
            in_body = True
        out.append(b"." + line if line.startswith(b".") else line)
    out.append(b".")
    return b"\r\n".join(out) + b"\r\n"


@dataclass(frozen=True)
class Listing:
    """One message of the maildrop as the session sees it."""

    key: str
    size: int


@dataclass(frozen=True)
class CheckPassword:
    """Check ``user``'s ``password``; then call :meth:`POP3Session.login_result`."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class CheckApop:
    """Check ``user``'s APOP ``digest`` against ``timestamp``; then :meth:`login_result`."""

    user: str
    timestamp: bytes
    digest: str = field(repr=False)


@dataclass(frozen=True)
class StartTLS:
    """Send the reply, then start TLS (and discard anything buffered before it)."""


@dataclass(frozen=True)
class Fetch:
    """Send the reply, then the message ``key`` via :func:`encode_multiline`."""

    key: str
    body_lines: int | None
    size: int = field(default=0, compare=False)  # octets, as listed (0: unknown)


@dataclass(frozen=True)
class Commit:
    """Delete ``keys`` from the maildrop, then call :meth:`POP3Session.commit_result`."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Close:
    """Send the reply, then close the connection."""


Action = CheckPassword | CheckApop | StartTLS | Fetch | Commit | Close


@dataclass(frozen=True)
class Reply:
    """Bytes to send now, and what to do next (``None``: read the next command)."""

    data: bytes
    action: Action | None = None


def _ok(text: str) -> bytes:
    return f"+OK {text}\r\n".encode()


def _err(text: str) -> bytes:
    return f"-ERR {text}\r\n".encode()


class POP3Session:
    """One POP3 conversation's state.

    Args:
        timestamp: the APOP timestamp of the greeting (``<...>``).
        tls: the connection is already TLS (the implicit-TLS port).
        tls_available: STLS may be offered.
        hostname: the name in the greeting.
    """

    def __init__(
        self,
        timestamp: bytes,
        *,
        tls: bool = False,
        tls_available: bool = False,
        hostname: str = "mail.example.com",
    ) -> None:
        self.timestamp = timestamp
        self.tls = tls
        self.tls_available = tls_available
        self.hostname = hostname
        self.state = "AUTHORIZATION"
        self.user: str | None = None
        self.pending_user: str | None = None
        self.failures = 0
        self.messages: list[Listing] = []
        self.deleted: set[int] = set()

    def greeting(self) -> bytes:
        """The first line, with the APOP timestamp."""
        return _ok(f"POP3 server ready {self.timestamp.decode('ascii')}")

    def capabilities(self) -> list[str]:
        """What CAPA lists in the current state."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state == "AUTHORIZATION":
            if self.tls:
                caps.append("USER")
            elif self.tls_available:
                caps.append("STLS")
        caps.append("IMPLEMENTATION wirelab")
        return caps

    # -- events ----------------------------------------------------------------------------
    def handle(self, event: Event) -> Reply:
        """The reply to one event."""
        if isinstance(event, BadLine):
            return Reply(_err(f"bad command line ({event.reason})"))
        name, args = event.name, event.args
        if name == "QUIT":
            if self.state == "TRANSACTION":
                self.state = "UPDATE"
                keys = tuple(self.messages[i].key for i in sorted(self.deleted))
                return Reply(b"", Commit(keys))
            return Reply(_ok(f"{self.hostname} POP3 server signing off"), Close())
        if name == "CAPA":
            body = "".join(f"{cap}\r\n" for cap in self.capabilities())
            return Reply(b"+OK Capability list follows\r\n" + body.encode("ascii") + b".\r\n")
        if name == "NOOP" and self.state == "TRANSACTION":
            return Reply(_ok(""))
        if self.state == "AUTHORIZATION":
            return self._authorization(name, args)
        return self._transaction(name, args)

    def _authorization(self, name: str, args: tuple[bytes, ...]) -> Reply:
        if name == "STLS":
            if self.tls:
                return Reply(_err("TLS is already active"))
            if not self.tls_available:
                return Reply(_err("STLS is not offered here"))
            self.tls = True
            self.pending_user = None
            return Reply(_ok("Begin TLS negotiation now"), StartTLS())
        if name == "USER":
            if not self.tls:
                return Reply(
                    _err(
                        "[AUTH] Plaintext authentication disallowed on non-secure "
                        "(SSL/TLS) connections"
                    )
                )
            if len(args) != 1:
                return Reply(_err("USER takes one argument"))
            self.pending_user = args[0].decode("ascii")
            return Reply(_ok("send your password"))
        if name == "PASS":
            if not self.tls:
                return Reply(
                    _err(
                        "[AUTH] Plaintext authentication disallowed on non-secure "
                        "(SSL/TLS) connections"
                    )
                )
            if self.pending_user is None:
                return Reply(_err("USER first"))
            user, self.pending_user = self.pending_user, None
            # RFC 1939: the password is the rest of the line, spaces included
            return Reply(b"", CheckPassword(user, b" ".join(args).decode("ascii")))
        if name == "APOP":
            if len(args) != 2:
                return Reply(_err("APOP takes a name and a digest"))
            return Reply(
                b"",
                CheckApop(args[0].decode("ascii"), self.timestamp, args[1].decode("ascii").lower()),
            )
        return Reply(_err(f"{name} is not valid before you log in"))

    def login_result(
        self, user: str, ok: bool, messages: Sequence[Listing] = (), *, reason: str = ""
    ) -> Reply:
        """After a :class:`CheckPassword` or :class:`CheckApop`: in, or one more failure."""
        if ok:
            self.state = "TRANSACTION"
            self.user = user
            self.messages = list(messages)
            total = sum(item.size for item in self.messages)
            return Reply(_ok(f"Logged in: {len(self.messages)} messages ({total} octets)"))
        self.failures += 1
        text = reason or "[AUTH] Authentication failed"
        if self.failures >= MAX_AUTH_FAILURES:
            return Reply(_err(f"{text}; too many failures, goodbye"), Close())
        return Reply(_err(text))

    def commit_result(self, failed: int) -> Reply:
        """After :class:`Commit`: the sign-off (RFC 1939 section 6)."""
        if failed:
            return Reply(_err(f"[SYS/TEMP] {failed} deleted messages not removed"), Close())
        left = len(self.messages) - len(self.deleted)
        return Reply(
            _ok(f"{self.hostname} POP3 server signing off ({left} messages left)"), Close()
        )

    def _number(self, arg: bytes) -> int | Reply:
        if not arg.isdigit() or len(arg) > 9:
            return Reply(_err("a message number is a positive integer"))
        number = int(arg)
        if not 1 <= number <= len(self.messages):
            return Reply(_err(f"no such message, only {len(self.messages)} in maildrop"))
        if number - 1 in self.deleted:
            return Reply(_err(f"message {number} already deleted"))
        return number

    def _live(self) -> list[tuple[int, Listing]]:
        """(number, message) of each message not marked deleted."""
        return [(i + 1, m) for i, m in enumerate(self.messages) if i not in self.deleted]

    def _transaction(self, name: str, args: tuple[bytes, ...]) -> Reply:
        # the maildrop walk only for the commands that report on all of it (RETR of one
        # message in a maildrop of 1000 walked all 1000)
        if name == "STAT":
            live = self._live()
            return Reply(_ok(f"{len(live)} {sum(m.size for _, m in live)}"))
        if name in ("LIST", "UIDL"):

            def value(m: Listing) -> str:
                return str(m.size) if name == "LIST" else uid_for(m.key)

            if args:
                number = self._number(args[0])
                if isinstance(number, Reply):
                    return number
                return Reply(_ok(f"{number} {value(self.messages[number - 1])}"))
            live = self._live()
            head = f"{len(live)} messages" if name == "LIST" else "unique-id listing follows"
            body = "".join(f"{n} {value(m)}\r\n" for n, m in live)
            return Reply(_ok(head) + body.encode("ascii") + b".\r\n")
        if name in ("RETR", "DELE", "TOP"):
            if not args or (name == "TOP") != (len(args) == 2) or len(args) > 2:
                usage = "TOP msg n" if name == "TOP" else f"{name} msg"
                return Reply(_err(f"usage: {usage}"))
            number = self._number(args[0])
            if isinstance(number, Reply):
                return number
            message = self.messages[number - 1]
            if name == "DELE":
                self.deleted.add(number - 1)
                return Reply(_ok(f"message {number} deleted"))
            if name == "RETR":
                return Reply(_ok(f"{message.size} octets"), Fetch(message.key, None, message.size))
            if not args[1].isdigit() or len(args[1]) > 9:
                return Reply(_err("TOP takes a non-negative number of lines"))
            return Reply(_ok("top of message follows"), Fetch(message.key, int(args[1])))
        if name == "RSET":
            self.deleted.clear()
            return Reply(_ok(f"maildrop has {len(self.messages)} messages"))
        if name in ("USER", "PASS", "APOP", "STLS"):
            return Reply(_err(f"{name} is not valid after login"))
        return Reply(_err(f"unknown command {name}"))
