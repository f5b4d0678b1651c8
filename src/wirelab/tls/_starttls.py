"""The plaintext dialogues that come before STARTTLS (RFC 3207, RFC 2595, RFC 4217), sans-I/O.

A client speaks a little of the plaintext protocol first, then asks the server to switch to
TLS on the same connection:

* SMTP (RFC 5321 + RFC 3207): greeting ``220``, ``EHLO``, the ``STARTTLS`` keyword in the
  ``250`` reply, ``STARTTLS``, ``220``;
* POP3 (RFC 1939 + RFC 2449 + RFC 2595 §4): ``+OK`` greeting, ``CAPA`` (``STLS`` listed),
  ``STLS``, ``+OK``;
* IMAP (RFC 3501 §6.2.1 / RFC 9051 §6.2.1): ``* OK`` greeting, ``CAPABILITY`` (unless the
  greeting carried it), ``STARTTLS``, tagged ``OK``;
* FTP (RFC 959 + RFC 4217 §4): ``220`` greeting, ``AUTH TLS``, ``234``.

:class:`StartTLSDialogue` is bytes in, events out (h11's shape): feed it what the server
sent with :meth:`~StartTLSDialogue.receive_data` (``b""`` for EOF) and ask
:meth:`~StartTLSDialogue.next_event` what to do: :class:`Send` some bytes, wait for more
(:data:`NEED_DATA`), or start the TLS handshake now (:data:`READY`). Any refusal or broken
reply raises :class:`~wirelab.errors.RemoteProtocolError`. Lines and the whole dialogue are
bounded. Bytes that arrive after the server agreed, but before the handshake, are rejected:
they would be plaintext an attacker could have injected (the CVE-2011-0411 class; RFC 3207
§4.2 and RFC 2595 §4 require discarding everything learnt before TLS).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Final

from wirelab.errors import ConfigError, LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_DIALOGUE_BYTES",
    "MAX_REPLY_LINES",
    "NEED_DATA",
    "PROTOCOLS",
    "READY",
    "Send",
    "StartTLSDialogue",
]

#: Every byte the server may send before TLS starts, all replies together.
MAX_DIALOGUE_BYTES = 64 << 10

#: Lines one multi-line reply may have (an EHLO reply lists a few dozen extensions at most).
MAX_REPLY_LINES = 200

#: Longest reply line, CRLF included, per protocol:
#: SMTP 512 (RFC 5321 §4.5.3.1.5), POP3 512 (RFC 2449 §4); IMAP and FTP set no limit, so we use
#: 8192 (RFC 7162 §4 recommends that much for IMAP command lines).
MAX_LINE: Final = {"smtp": 512, "pop3": 512, "imap": 8192, "ftp": 8192}


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Event: feed more bytes from the server before asking again.
NEED_DATA: Final = _Sentinel("NEED_DATA")
#: Event: the server agreed; start the TLS handshake on this connection now.
READY: Final = _Sentinel("READY")
_READ: Final = _Sentinel("READ")


@dataclass(frozen=True)
class Send:
    """Event: send these bytes to the server."""

    data: bytes


Action = Send | _Sentinel
Script = Generator[Action, str, None]
Event = Send | _Sentinel

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})?")
_LITERAL = re.compile(r"\{\d+\+?\}$")


def _reply_code(line: str, proto: str) -> tuple[int, bool, str]:
    """``250-PIPELINING`` -> ``(250, True, "PIPELINING")``: code, more lines follow, text."""
    if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
        raise RemoteProtocolError(f"the {proto} server sent a malformed reply line {line[:80]!r}")
    return int(line[:3]), line[3:4] == "-", line[4:]


def _numbered_reply(proto: str) -> Generator[Action, str, tuple[int, list[str]]]:
    """Read one SMTP/FTP reply, single or multi-line (RFC 5321 §4.2.1, RFC 959 §4.2)."""
    line = yield _READ
    code, more, text = _reply_code(line, proto)
    texts = [text]
    while more:
        if len(texts) >= MAX_REPLY_LINES:
            raise RemoteProtocolError(
                f"the {proto} server sent a reply of over {MAX_REPLY_LINES} lines"
            )
        line = yield _READ
        if proto == "FTP" and not line[:3].isdigit():
            texts.append(line)  # RFC 959 §4.2: inner lines of a multi-line reply are free text
            continue
        next_code, more, text = _reply_code(line, proto)
        if next_code != code:
            raise RemoteProtocolError(
                f"the {proto} server changed its reply code mid-reply ({code} then {next_code})"
            )
        texts.append(text)
    return code, texts


def _refused(proto: str, what: str, code: int | None, text: str) -> RemoteProtocolError:
    shown = f"{code} {text}".strip() if code is not None else text
    return RemoteProtocolError(f"the {proto} server refused {what}: {shown[:200]}", code=code)


def _smtp(client_name: str) -> Script:
    code, texts = yield from _numbered_reply("SMTP")
    if code != 220:
        raise _refused("SMTP", "the session", code, " ".join(texts))
    yield Send(f"EHLO {client_name}\r\n".encode("ascii"))
    code, texts = yield from _numbered_reply("SMTP")
    if code != 250:
        raise _refused("SMTP", "EHLO", code, " ".join(texts))
    keywords = {t.split()[0].upper() for t in texts[1:] if t.split()}
    if "STARTTLS" not in keywords:
        raise RemoteProtocolError("the SMTP server does not offer STARTTLS (RFC 3207)")
    yield Send(b"STARTTLS\r\n")
    code, texts = yield from _numbered_reply("SMTP")
    if code != 220:
        raise _refused("SMTP", "STARTTLS", code, " ".join(texts))
    yield READY


def _pop3(client_name: str) -> Script:
    line = yield _READ
    if not line.startswith("+OK"):
        raise _refused("POP3", "the session", None, line)
    yield Send(b"CAPA\r\n")
    line = yield _READ
    if line.startswith("+OK"):  # RFC 2449 §5: a multi-line list ended by "."
        capabilities: set[str] = set()
        for _ in range(MAX_REPLY_LINES):
            line = yield _READ
            if line == ".":
                break
            capabilities.add(line.split(" ", 1)[0].upper())
        else:
            raise RemoteProtocolError(
                f"the POP3 server's CAPA list ran over {MAX_REPLY_LINES} lines"
            )
        if "STLS" not in capabilities:
            raise RemoteProtocolError("the POP3 server does not offer STLS (RFC 2595)")
    elif not line.startswith("-ERR"):
        raise RemoteProtocolError(f"the POP3 server sent a malformed reply {line[:80]!r}")
    yield Send(b"STLS\r\n")
    line = yield _READ
    if not line.startswith("+OK"):
        raise _refused("POP3", "STLS", None, line)
    yield READY


def _imap_capabilities(text: str) -> set[str] | None:
    match = re.search(r"\[CAPABILITY ([^\]]*)\]", text, re.I)
    if match is None:
        return None
    return {c.upper() for c in match.group(1).split()}


def _imap_tagged(tag: str) -> Generator[Action, str, tuple[str, list[str]]]:
    """Read untagged lines until the line tagged ``tag``; return its status and the others."""
    untagged: list[str] = []
    for _ in range(MAX_REPLY_LINES):
        line = yield _READ
        if _LITERAL.search(line):
            raise RemoteProtocolError("the IMAP server sent a literal before TLS; not supported")
        if line.startswith(tag + " "):
            return line[len(tag) + 1 :].split(" ", 1)[0].upper(), untagged
        if not line.startswith("* "):
            raise RemoteProtocolError(f"the IMAP server sent an unexpected line {line[:80]!r}")
        untagged.append(line[2:])
    raise RemoteProtocolError(f"the IMAP server sent over {MAX_REPLY_LINES} lines untagged")


def _imap(client_name: str) -> Script:
    greeting = yield _READ
    status = greeting[2:].split(" ", 1)[0].upper() if greeting.startswith("* ") else ""
    if status == "PREAUTH":
        raise RemoteProtocolError(
            "the IMAP server pre-authenticated the connection, so STARTTLS is not allowed "
            "(RFC 3501 §6.2.1)"
        )
    if status != "OK":
        raise _refused("IMAP", "the session", None, greeting)
    capabilities = _imap_capabilities(greeting)
    if capabilities is None:
        yield Send(b"W1 CAPABILITY\r\n")
        status, untagged = yield from _imap_tagged("W1")
        if status != "OK":
            raise _refused("IMAP", "CAPABILITY", None, status)
        capabilities = set()
        for line in untagged:
            if line.upper().startswith("CAPABILITY "):
                capabilities |= {c.upper() for c in line.split()[1:]}
    if "STARTTLS" not in capabilities:
        raise RemoteProtocolError("the IMAP server does not offer STARTTLS (RFC 3501 §6.2.1)")
    yield Send(b"W2 STARTTLS\r\n")
    status, _ = yield from _imap_tagged("W2")
    if status != "OK":
        raise _refused("IMAP", "STARTTLS", None, status)
    yield READY


def _ftp(client_name: str) -> Script:
    code, texts = yield from _numbered_reply("FTP")
    for _ in range(3):  # RFC 959 §5.4: "120 ready in nnn minutes" comes before the 220
        if code != 120:
            break
        code, texts = yield from _numbered_reply("FTP")
    if code != 220:
        raise _refused("FTP", "the session", code, " ".join(texts))
    yield Send(b"AUTH TLS\r\n")
    code, texts = yield from _numbered_reply("FTP")
    if code != 234:  # RFC 4217 §4: 234 means "go ahead with the TLS handshake"
        raise _refused("FTP", "AUTH TLS", code, " ".join(texts))
    yield READY


PROTOCOLS: Final[dict[str, Callable[[str], Script]]] = {
    "smtp": _smtp,
    "pop3": _pop3,
    "imap": _imap,
    "ftp": _ftp,
}


class StartTLSDialogue:
    """A client's plaintext dialogue up to the point where TLS starts.

    Args:
        protocol: ``smtp``, ``pop3``, ``imap`` or ``ftp``.
        client_name: the name the SMTP client gives in ``EHLO``.
        max_line: longest reply line accepted (default: the protocol's, see ``MAX_LINE``).
        max_bytes: every byte accepted before TLS, all replies together.
    """

    def __init__(
        self,
        protocol: str,
        *,
        client_name: str = "wirelab.localhost",
        max_line: int | None = None,
        max_bytes: int = MAX_DIALOGUE_BYTES,
    ) -> None:
        try:
            script = PROTOCOLS[protocol.lower()]
        except KeyError:
            known = ", ".join(PROTOCOLS)
            raise ConfigError(f"no STARTTLS for {protocol!r}; choose one of {known}") from None
        if not _HOSTNAME.fullmatch(client_name):
            raise LocalProtocolError(f"{client_name!r} is not a host name to give in EHLO")
        self.protocol = protocol.lower()
        self.max_line = max_line or MAX_LINE[self.protocol]
        self.max_bytes = max_bytes
        self._script = script(client_name)
        self._pending: Action = next(self._script)
        self._buffer = bytearray()
        self._received = 0
        self._eof = False
        self._ready = False

    @property
    def ready(self) -> bool:
        """True once the server agreed to start TLS."""
        return self._ready

    def receive_data(self, data: bytes) -> None:
        """Feed bytes the server sent; ``b""`` means it closed the connection.

        Raises:
            RemoteProtocolError: the dialogue is over its byte limit, or the server sent bytes
                after it agreed to start TLS.
        """
        if not data:
            self._eof = True
            return
        if self._ready:
            raise RemoteProtocolError(
                f"the {self.protocol.upper()} server sent plaintext after agreeing to start TLS "
                "(refused: it could be injected)"
            )
        self._received += len(data)
        if self._received > self.max_bytes:
            raise RemoteProtocolError(
                f"the {self.protocol.upper()} server sent over {self.max_bytes} bytes before TLS"
            )
        self._buffer += data

    def _take_line(self) -> str | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) >= self.max_line:
                raise RemoteProtocolError(
                    f"the {self.protocol.upper()} server sent a line over {self.max_line} bytes"
                )
            return None
        if end + 1 > self.max_line:
            raise RemoteProtocolError(
                f"the {self.protocol.upper()} server sent a line over {self.max_line} bytes"
            )
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return raw.removesuffix(b"\r").decode("latin-1")

    def next_event(self) -> Event:
        """Return what to do next: :class:`Send`, :data:`NEED_DATA` or :data:`READY`.

        Raises:
            RemoteProtocolError: the server refused, broke the protocol, or closed early.
        """
        while True:
            action = self._pending
            if action is READY:
                if self._buffer:
                    raise RemoteProtocolError(
                        f"the {self.protocol.upper()} server sent plaintext after agreeing to "
                        "start TLS (refused: it could be injected)"
                    )
                self._ready = True
                return READY
            if isinstance(action, Send):
                self._pending = self._script.send("")
                return action
            line = self._take_line()
            if line is None:
                if self._eof:
                    raise RemoteProtocolError(
                        f"the {self.protocol.upper()} server closed the connection before TLS"
                    )
                return NEED_DATA
            self._pending = self._script.send(line)
