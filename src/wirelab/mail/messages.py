"""Building and reading e-mail messages with the stdlib ``email`` policy API (chapter 12).

* :func:`build_text` (F70): a text/plain message with Date and Message-ID;
* :func:`build_mime` (F71-F73): plain text and HTML as multipart/alternative (plain first:
  the *last* alternative is the preferred one, the book had them the wrong way round), an
  optional inline image in multipart/related referenced by ``cid:``, attachments with their
  type guessed and only the file's base name (the book leaked the path given);
* :func:`build_unicode` (F74): non-ASCII headers (RFC 2047) and a quoted-printable UTF-8 body;
* :func:`summarize` (F75): key headers, the best body, the attachments;
* :func:`mime_tree` (F76): every part with its dotted number, type, size and file name.

Messages are bytes with CRLF line ends (``email.policy.SMTP``), ready for SMTP. Readers never
crash on an unknown charset: the text is shown decoded as UTF-8 with replacement characters
and the charset is reported.
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from wirelab.errors import ConfigError

__all__ = [
    "BLUE_DOT_GIF",
    "MAX_PARSE_BYTES",
    "MessageSummary",
    "Part",
    "build_mime",
    "build_text",
    "build_unicode",
    "mime_tree",
    "parse",
    "summarize",
]

#: The largest message the readers parse (the lab's SIZE limit and a little more).
MAX_PARSE_BYTES = 16 << 20

#: A 1x1 blue GIF, the book's ``blue-dot.gif`` (made here, not copied).
BLUE_DOT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\xff\xff\xff\xff!\xf9\x04\x01\x00\x00\x01\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

_POLICY = email.policy.SMTP
_DOMAIN = "example.com"


def _headers(message: EmailMessage, sender: str, to: Sequence[str], subject: str) -> None:
    for value in (sender, subject, *to):
        if "\r" in value or "\n" in value:
            raise ConfigError("a header value may not contain a line break")
    message["To"] = ", ".join(to)
    message["From"] = sender
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = email.utils.make_msgid(domain=_DOMAIN)


def build_text(
    sender: str, to: Sequence[str], subject: str, text: str, *, date: str | None = None
) -> bytes:
    """A text/plain UTF-8 message with Date and Message-ID, CRLF line ends (F70).

    Raises:
        ConfigError: a line break in a header value (header injection).
    """
    message = EmailMessage(policy=_POLICY)
    _headers(message, sender, to, subject)
    if date is not None:
        message.replace_header("Date", date)
    message.set_content(text)
    return message.as_bytes()


def build_mime(
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    inline_image: bool = False,
    attachments: Sequence[Path] = (),
) -> bytes:
    """Plain text and HTML alternatives, an optional inline image, attachments (F71-F73).

    The plain part comes first and the HTML last (RFC 2046: the last alternative is the
    preferred one). With ``inline_image`` the HTML sits in multipart/related beside a blue
    dot it references as ``cid:``. Each attachment's type is guessed from its name (compressed
    or unknown: application/octet-stream); only its base name goes into the message.

    Raises:
        ConfigError: an attachment that cannot be read, or a line break in a header.
    """
    message = EmailMessage(policy=_POLICY)
    _headers(message, sender, to, subject)
    message.set_content(text)
    if html is None:
        html = "<p>" + text.replace("&", "&amp;").replace("<", "&lt;") + "</p>"
    if inline_image:
        cid = email.utils.make_msgid(domain=_DOMAIN)
        message.add_alternative(
            f'{html}\n<p><img src="cid:{cid[1:-1]}" alt="a blue dot"></p>\n', subtype="html"
        )
        payload = message.get_payload()
        assert isinstance(payload, list)
        html_part = payload[-1]
        assert isinstance(html_part, EmailMessage)
        html_part.add_related(
            BLUE_DOT_GIF, "image", "gif", cid=cid, filename="blue-dot.gif", disposition="inline"
        )
    else:
        message.add_alternative(html, subtype="html")
    for path in attachments:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        ctype, encoding = mimetypes.guess_type(path.name)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        if maintype == "text":
            message.add_attachment(
                data.decode("utf-8", "replace"), subtype=subtype, filename=path.name
            )
        else:
            message.add_attachment(data, maintype, subtype, filename=path.name)
    return message.as_bytes()


#: The Old English verse of the book's ``build_unicode_email.py`` (public domain text).
POEM = (
    "Hwæt! We Gardena in geardagum,\nþeodcyninga, þrym gefrunon,\nhu ða æþelingas ellen fremedon.\n"
)


def build_unicode(sender: str, to_name: str, to_address: str, subject: str) -> bytes:
    """A message with a non-ASCII display name (RFC 2047) and a QP UTF-8 body (F74)."""
    message = EmailMessage(policy=_POLICY)
    _headers(message, sender, [email.utils.formataddr((to_name, to_address))], subject)
    message.set_content(POEM, cte="quoted-printable")
    return message.as_bytes()


def parse(data: bytes) -> EmailMessage:
    """Parse ``data`` with the SMTP policy.

    Raises:
        ConfigError: more than :data:`MAX_PARSE_BYTES`.
    """
    if len(data) > MAX_PARSE_BYTES:
        raise ConfigError(f"the message is {len(data)} bytes, over {MAX_PARSE_BYTES}")
    parsed = email.message_from_bytes(data, policy=_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _content(part: Message) -> tuple[str | bytes, str | None]:
    """A leaf's content, and a note when its charset is unknown (shown, not crashed on)."""
    assert isinstance(part, EmailMessage)
    try:
        content: Any = part.get_content()
    except LookupError:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        return data.decode("utf-8", "replace"), f"unknown charset {part.get_content_charset()!r}"
    except (ValueError, AssertionError, UnicodeError) as exc:
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        return data, f"undecodable: {exc}"
    if isinstance(content, EmailMessage):  # message/rfc822
        return content.as_bytes(), None
    return content, None


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return "(unreadable)"
    return "" if value is None else str(value)


@dataclass
class Part:
    """One MIME part: its dotted number, type, and for leaves the size and file name."""

    number: str
    content_type: str
    depth: int
    kind: str = ""
    length: int = 0
    attachment: bool = False
    filename: str | None = None
    note: str | None = None

    def line(self) -> str:
        """The book's display_structure line: ``.0.1 type=text/html str len=42``."""
        text = f"{'  ' * self.depth}{self.number or '.'} type={self.content_type}"
        if self.kind:
            text += f" {self.kind} len={self.length}"
            if self.attachment:
                text += " attachment"
            if self.filename is not None:
                text += f" filename={self.filename!r}"
        if self.note:
            text += f" ({self.note})"
        return text

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "part": self.number or ".",
            "type": self.content_type,
            "kind": self.kind or None,
            "length": self.length,
            "attachment": self.attachment,
            "filename": self.filename,
            "note": self.note,
        }


def _walk(part: Message, prefix: str, depth: int) -> Iterator[tuple[str, int, Message]]:
    yield prefix, depth, part
    if part.is_multipart():
        assert isinstance(part, EmailMessage)
        for index, sub in enumerate(part.iter_parts()):
            yield from _walk(sub, f"{prefix}.{index}", depth + 1)


def mime_tree(message: EmailMessage, *, max_parts: int = 1000) -> list[Part]:
    """Every part with a dotted number (``""`` is the message, ``.0.1`` ...) (F76)."""
    parts: list[Part] = []
    for number, depth, part in _walk(message, "", 0):
        if len(parts) >= max_parts:
            break
        entry = Part(number, part.get_content_type(), depth)
        if part.get_content_maintype() != "multipart":
            content, note = _content(part)
            entry.kind = type(content).__name__
            entry.length = len(content)
            assert isinstance(part, EmailMessage)
            entry.attachment = part.is_attachment()
            entry.filename = part.get_filename()
            entry.note = note
        parts.append(entry)
    return parts


@dataclass
class MessageSummary:
    """What ``mail show`` prints: key headers, the best body, the attachments (F75)."""

    headers: dict[str, str]
    body: str | None
    body_type: str | None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "headers": self.headers,
            "body_type": self.body_type,
            "body": self.body,
            "attachments": self.attachments,
            "notes": self.notes,
        }


def summarize(message: EmailMessage) -> MessageSummary:
    """Key headers, the best body (plain preferred to HTML) and each attachment (F75)."""
    headers = {name: _header(message, name) for name in ("From", "To", "Date", "Subject")}
    summary = MessageSummary(headers, None, None)
    try:
        best = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError, AssertionError):
        best = None
    if best is not None:
        content, note = _content(best)
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        summary.body = text.replace("\r\n", "\n")  # for display: the SMTP policy keeps CRLF
        summary.body_type = best.get_content_type()
        if note:
            summary.notes.append(note)
    for part in message.walk():
        if part.is_multipart() or not isinstance(part, EmailMessage):
            continue
        if not part.is_attachment():
            continue
        content, note = _content(part)
        summary.attachments.append(
            {
                "type": part.get_content_type(),
                "filename": part.get_filename(),
                "kind": type(content).__name__,
                "length": len(content),
            }
        )
        if note:
            summary.notes.append(note)
    return summary
