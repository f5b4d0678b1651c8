"""A POP3 client on the stdlib's poplib, always with an explicit SSLContext (chapter 14).

:class:`PopClient` opens the connection the book's way (``POP3_SSL``, implicit TLS) or on
the plain port, where it upgrades with STLS before any password: USER/PASS never crosses
the wire in clear (APOP may, with ``allow_plain_apop``, as the digest hides the password).
Every poplib, TLS and socket exception is mapped at this seam to a :mod:`wirelab.errors`
class with one line of text. The ``trace`` callback sees each line sent and received, with
PASS and APOP arguments replaced by ``****``.

Message bytes are returned exactly as the server sent them (CRLF line ends restored); use
:func:`decode_message` to turn them into an :class:`email.message.EmailMessage`: 8-bit
headers and bodies in any charset are decoded with replacement, never a crash.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import poplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from wirelab.errors import Broken, ConfigError, RemoteProtocolError, Timeout, TLSError, WirelabError

__all__ = ["POP3Error", "PopClient", "Summary", "decode_message", "summarize"]

Trace = Callable[[str], None]


class POP3Error(RemoteProtocolError):
    """The server answered ``-ERR``."""


@contextlib.contextmanager
def _seam(where: str) -> Iterator[None]:
    try:
        yield
    except WirelabError:
        raise
    except poplib.error_proto as exc:
        text = exc.args[0] if exc.args else exc
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise POP3Error(f"POP3 error: {where}: {text}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.verify_message or exc}") from exc
    except ssl.SSLError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise Timeout(f"network failure: {where}: timed out") from exc
    except EOFError as exc:
        raise Broken(f"network failure: {where}: the server closed the connection") from exc
    except OSError as exc:
        raise Broken(f"network failure: {where}: {exc.strerror or exc}") from exc


class _Traced(poplib.POP3):
    """poplib's POP3 with each line shown to ``trace`` (PASS and APOP secrets hidden)."""

    trace: Trace | None = None

    def _putline(self, line: bytes) -> None:
        if self.trace is not None:
            shown = line.decode("ascii", "replace")
            word = shown.split(" ", 1)[0].upper()
            if word == "PASS":
                shown = "PASS ****"
            elif word == "APOP":
                shown = " ".join(shown.split(" ")[:2]) + " ****"
            self.trace(f"C: {shown}")
        super()._putline(line)  # type: ignore[misc]

    def _getline(self) -> tuple[bytes, int]:
        line, octets = super()._getline()  # type: ignore[misc]
        if self.trace is not None:
            self.trace(f"S: {line.decode('utf-8', 'replace')}")
        return line, octets


class _TracedSSL(_Traced, poplib.POP3_SSL):
    """The same over implicit TLS."""


_TracingPOP3 = _Traced
_TracingPOP3SSL = _TracedSSL


class PopClient:
    """One POP3 session. Use as a context manager; :meth:`quit` commits deletions.

    Args:
        host: the server's name (verified against its certificate).
        port: its port.
        context: the client TLS context (required: there is no unverified mode).
        implicit_tls: TLS from the first byte (``pop3s``), else STLS on the plain port.
        timeout: seconds for the connection and each reply.
        trace: called with each line of the conversation.

    Raises:
        ConnectError, Timeout, TLSError, POP3Error: from the seam.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        implicit_tls: bool = False,
        timeout: float = 30.0,
        trace: Trace | None = None,
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise ConfigError("a POP3 client needs an SSLContext")
        self.host, self.port = host, port
        self.tls = implicit_tls
        where = f"{host}:{port}"
        try:
            if implicit_tls:
                self._pop: Any = _TracingPOP3SSL(host, port, context=context, timeout=timeout)
            else:
                self._pop = _TracingPOP3(host, port, timeout=timeout)
        except ConnectionRefusedError as exc:
            from wirelab.errors import ConnectionRefused

            raise ConnectionRefused(f"network failure: {where}: connection refused") from exc
        except (OSError, poplib.error_proto, EOFError) as exc:
            with _seam(where):
                raise exc
            raise  # pragma: no cover
        self._pop.trace = trace
        if trace is not None:
            trace(f"S: {self._pop.welcome.decode('utf-8', 'replace')}")
        self.where = where
        self.capabilities: dict[str, list[str]] = {}
        with _seam(f"{where} CAPA"):
            try:
                self.capabilities = self._pop.capa()
            except poplib.error_proto:
                self.capabilities = {}  # RFC 1939 servers have no CAPA
        if not implicit_tls and "STLS" in self.capabilities:
            with _seam(f"{where} STLS"):
                self._pop.stls(context=context)
            self.tls = True
            with _seam(f"{where} CAPA"), contextlib.suppress(poplib.error_proto):
                self.capabilities = self._pop.capa()

    @property
    def welcome(self) -> str:
        """The server's greeting."""
        return str(self._pop.welcome.decode("utf-8", "replace"))

    def login(
        self,
        user: str,
        password: str,
        *,
        apop: bool = False,
        allow_plaintext: bool = False,
    ) -> None:
        """Log in with USER/PASS, or APOP (the MD5 digest of the greeting's timestamp).

        Raises:
            TLSError: USER/PASS without TLS (unless ``allow_plaintext``).
            POP3Error: the server refused.
        """
        where = f"{self.where} login as {user}"
        if apop:
            with _seam(where):
                self._pop.apop(user, password)
            return
        if not self.tls and not allow_plaintext:
            raise TLSError(
                f"TLS failure: {self.where} offers no STLS; refusing to send a password in clear"
            )
        with _seam(where):
            self._pop.user(user)
            self._pop.pass_(password)

    def stat(self) -> tuple[int, int]:
        """(messages, octets) in the maildrop."""
        with _seam(f"{self.where} STAT"):
            count, size = self._pop.stat()
        return int(count), int(size)

    def list(self) -> list[tuple[int, int]]:
        """(number, size) of every message not marked deleted."""
        with _seam(f"{self.where} LIST"):
            _, lines, _ = self._pop.list()
        result = []
        for line in lines:
            number, size = line.split()[:2]
            result.append((int(number), int(size)))
        return result

    def uidl(self) -> dict[int, str]:
        """Message number to unique id (empty if the server has no UIDL)."""
        with _seam(f"{self.where} UIDL"):
            try:
                _, lines, _ = self._pop.uidl()
            except poplib.error_proto:
                return {}
        pairs = (line.decode("ascii", "replace").split() for line in lines)
        return {int(p[0]): p[1] for p in pairs if len(p) >= 2}

    def top(self, number: int, lines: int = 0) -> bytes:
        """The headers and the first ``lines`` body lines of message ``number``."""
        with _seam(f"{self.where} TOP {number}"):
            _, body, _ = self._pop.top(number, lines)
        return b"\r\n".join(body) + b"\r\n"

    def retr(self, number: int) -> bytes:
        """Message ``number``, as stored (CRLF line ends)."""
        with _seam(f"{self.where} RETR {number}"):
            _, body, _ = self._pop.retr(number)
        return b"\r\n".join(body) + b"\r\n"

    def dele(self, number: int) -> None:
        """Mark message ``number`` deleted (the server deletes it at :meth:`quit`)."""
        with _seam(f"{self.where} DELE {number}"):
            self._pop.dele(number)

    def quit(self) -> str:
        """QUIT: the server applies the deletions; its answer."""
        with _seam(f"{self.where} QUIT"):
            answer = self._pop.quit()
        return str(answer.decode("utf-8", "replace"))

    def close(self) -> None:
        """Drop the connection without QUIT: nothing marked is deleted."""
        with contextlib.suppress(OSError):
            self._pop.close()

    def __enter__(self) -> PopClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pop.sock is not None:
            if exc_info[0] is None:
                self.quit()
            else:
                self.close()


def decode_message(data: bytes) -> EmailMessage:
    """Parse a message's bytes; 8-bit text in any charset is decoded, never a crash."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@dataclass(frozen=True)
class Summary:
    """What the book's download-and-delete shows of a message: a few headers."""

    number: int
    size: int
    headers: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "size": self.size, "headers": self.headers}


def header_text(message: EmailMessage, name: str) -> str | None:
    """A header decoded to text (RFC 2047, 8-bit), or ``None``; never raises."""
    try:
        value = message.get(name)
    except Exception:  # a malformed header is shown raw
        raw = message.get_all(name, failobj=[None])
        value = raw[0] if raw else None
    return None if value is None else str(value)


def summarize(number: int, size: int, head: bytes) -> Summary:
    """The From, To, Subject and Date of a TOP answer."""
    message = decode_message(head)
    headers = {}
    for name in ("From", "To", "Subject", "Date"):
        value = header_text(message, name)
        if value is not None:
            headers[name] = value
    return Summary(number, size, headers)


def plain_text(message: EmailMessage) -> list[str]:
    """The text/plain parts, decoded with their charset (replacement for bad bytes)."""
    texts = []
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "us-ascii"
            try:
                texts.append(payload.decode(charset, "replace"))
            except LookupError:
                texts.append(payload.decode("latin-1"))
    return texts
