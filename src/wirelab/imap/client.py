"""An IMAP client on IMAPClient, always with an explicit SSLContext (chapter 15).

:func:`connect` opens the book's way (implicit TLS, ``IMAPClient(ssl=True)``) or upgrades a
plain connection with STARTTLS before LOGIN; a server that offers neither gets no password.
The rest reads without changing anything: folders are selected read-only and every fetch
uses ``BODY.PEEK``, so nothing is marked ``\\Seen``; :func:`structure` turns BODYSTRUCTURE
into a tree with IMAP part numbers, so that :func:`fetch_part` downloads only the part asked.
Exceptions are mapped at this seam to :mod:`wirelab.errors` classes, one line each.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email
import email.policy
import quopri
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wirelab.errors import (
    Broken,
    ConfigError,
    ConnectionRefused,
    RemoteProtocolError,
    Timeout,
    TLSError,
    WirelabError,
)

__all__ = [
    "IMAPError",
    "MessageSummary",
    "Part",
    "connect",
    "fetch_message",
    "fetch_part",
    "folder_info",
    "folders",
    "structure",
    "summaries",
]


class IMAPError(RemoteProtocolError):
    """The server answered NO or BAD, or refused the login."""


@contextlib.contextmanager
def seam(where: str) -> Iterator[None]:
    """Map IMAPClient's, imaplib's, TLS and socket exceptions to wirelab's."""
    from imapclient.exceptions import IMAPClientError

    try:
        yield
    except WirelabError:
        raise
    except IMAPClientError as exc:
        raise IMAPError(f"IMAP error: {where}: {_text(exc)}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.verify_message or exc}") from exc
    except ssl.SSLError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.reason or exc}") from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(f"network failure: {where}: connection refused") from exc
    except TimeoutError as exc:
        raise Timeout(f"network failure: {where}: timed out") from exc
    except (EOFError, ConnectionError) as exc:
        raise Broken(f"network failure: {where}: the server closed the connection") from exc
    except OSError as exc:
        raise Broken(f"network failure: {where}: {exc.strerror or exc}") from exc


def _text(exc: BaseException) -> str:
    value = exc.args[0] if exc.args else exc
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def connect(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    context: ssl.SSLContext,
    implicit_tls: bool = True,
    timeout: float = 30.0,
) -> Any:
    """An :class:`imapclient.IMAPClient`, logged in over TLS. Close it with ``logout()``.

    Raises:
        TLSError: no TLS (STARTTLS not offered), or verification failed.
        IMAPError: the login was refused.
    """
    from imapclient import IMAPClient

    if not isinstance(context, ssl.SSLContext):
        raise ConfigError("an IMAP client needs an SSLContext")
    where = f"{host}:{port}"
    with seam(where):
        client = IMAPClient(
            host, port, ssl=implicit_tls, ssl_context=context, timeout=timeout, use_uid=True
        )
    try:
        with seam(where):
            if not implicit_tls:
                if not client.has_capability("STARTTLS"):
                    raise TLSError(
                        f"TLS failure: {where} offers no STARTTLS; "
                        "refusing to send a password in clear"
                    )
                client.starttls(ssl_context=context)
        with seam(f"{where} login as {user}"):
            client.login(user, password)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def folders(client: Any) -> list[dict[str, Any]]:
    """Every folder: its flags, hierarchy delimiter and name (the book's open_imap.py)."""
    with seam("LIST"):
        listing = client.list_folders()
    return [
        {"flags": [_s(f) for f in flags], "delimiter": _s(delimiter), "name": _s(name)}
        for flags, delimiter, name in listing
    ]


def folder_info(client: Any, folder: str) -> dict[str, Any]:
    """``folder`` selected read-only: EXISTS, RECENT, UIDNEXT, UIDVALIDITY, FLAGS ..."""
    with seam(f"EXAMINE {folder}"):
        info = client.select_folder(folder, readonly=True)
    result: dict[str, Any] = {}
    for key, value in info.items():
        name = _s(key)
        if isinstance(value, tuple | list):
            result[name] = [_s(v) for v in value]
        else:
            result[name] = value if isinstance(value, int | bool) else _s(value)
    return result


@dataclass
class Part:
    """One node of a BODYSTRUCTURE: its IMAP part number and what it is."""

    number: str
    type: str
    params: dict[str, str] = field(default_factory=dict)
    encoding: str = ""
    size: int | None = None
    filename: str | None = None
    disposition: str | None = None
    parts: list[Part] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "type": self.type,
            "params": self.params,
            "encoding": self.encoding,
            "size": self.size,
            "filename": self.filename,
            "disposition": self.disposition,
            "parts": [p.to_json() for p in self.parts],
        }

    def walk(self) -> Iterator[Part]:
        yield self
        for part in self.parts:
            yield from part.walk()

    def find(self, number: str) -> Part | None:
        return next((p for p in self.walk() if p.number == number), None)


def _params(value: Any) -> dict[str, str]:
    if not isinstance(value, tuple | list):
        return {}
    items = list(value)
    return {_s(items[i]).lower(): _s(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _disposition(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, bytes | str) and value:
        # RFC 3501 wants ("attachment" ("filename" "x")); pymap sends the header's text
        from email.message import Message

        holder = Message()
        holder["Content-Disposition"] = _s(value)
        kind = holder.get_content_disposition()
        name = holder.get_param("filename", header="content-disposition")
        return kind, name if isinstance(name, str) else None
    if not isinstance(value, tuple | list) or not value:
        return None, None
    kind = _s(value[0]).lower() or None
    params = _params(value[1]) if len(value) > 1 else {}
    return kind, params.get("filename")


def structure(bodystructure: Any, number: str = "") -> Part:
    """BODYSTRUCTURE as a :class:`Part` tree; ``""`` is the whole message (``TEXT`` root).

    Part numbers follow RFC 3501 section 6.4.5: the children of a multipart are ``1``, ``2``
    ...; nested ones ``2.1``; the body of a message/rfc822 part ``N`` is ``N.1`` ... (or
    ``N.1`` itself when it is not multipart).
    """
    if isinstance(bodystructure[0], list | tuple):
        if isinstance(bodystructure[0], list):  # IMAPClient's form: ([parts], subtype, ...)
            members, rest = list(bodystructure[0]), list(bodystructure[1:])
        else:  # the wire's form, as nested in message/rfc822: (part, part, subtype, ...)
            items = list(bodystructure)
            split = next(i for i, v in enumerate(items) if not isinstance(v, list | tuple))
            members, rest = items[:split], items[split:]
        children = [
            structure(child, f"{number}.{i}" if number else str(i))
            for i, child in enumerate(members, 1)
        ]
        subtype = _s(rest[0]).lower() if rest else "mixed"
        params = _params(rest[1]) if len(rest) > 1 else {}
        return Part(number, f"multipart/{subtype}", params, parts=children)
    main, sub = _s(bodystructure[0]).lower(), _s(bodystructure[1]).lower()
    part = Part(
        number or "1",
        f"{main}/{sub}",
        _params(bodystructure[2]),
        _s(bodystructure[5]).lower(),
        bodystructure[6] if isinstance(bodystructure[6], int) else None,
    )
    if main == "text":
        extension = 9
    elif (main, sub) == ("message", "rfc822"):
        extension = 11
        inner = bodystructure[8]
        base = part.number
        inner_part = structure(inner, base)
        if inner_part.type.startswith("multipart/"):
            part.parts = inner_part.parts
        else:
            inner_part.number = f"{base}.1"
            part.parts = [inner_part]
    else:
        extension = 8
    if len(bodystructure) > extension:
        part.disposition, part.filename = _disposition(bodystructure[extension])
    if part.filename is None and "name" in part.params:
        part.filename = part.params["name"]
    return part


@dataclass
class MessageSummary:
    """One message as the summary shows it, fetched without its body or ``\\Seen``."""

    uid: int
    date: str
    size: int
    flags: list[str]
    sender: str
    subject: str
    parts: Part

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "date": self.date,
            "size": self.size,
            "flags": self.flags,
            "from": self.sender,
            "subject": self.subject,
            "structure": self.parts.to_json(),
        }


_HEADERS = b"BODY[HEADER.FIELDS (FROM SUBJECT)]"


def summaries(client: Any, folder: str, *, limit: int | None = None) -> list[MessageSummary]:
    """UID, date, size, flags, From, Subject and structure of the messages in ``folder``."""
    folder_info(client, folder)
    with seam(f"SEARCH {folder}"):
        uids = sorted(client.search("ALL"))
    if limit is not None:
        uids = uids[-limit:]
    if not uids:
        return []
    items = [
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "BODYSTRUCTURE",
        "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
    ]
    with seam(f"FETCH {folder}"):
        data = client.fetch(uids, items)
    result = []
    for uid in uids:
        entry = data.get(uid, {})
        headers = email.message_from_bytes(entry.get(_HEADERS, b""), policy=email.policy.default)
        when = entry.get(b"INTERNALDATE")
        result.append(
            MessageSummary(
                uid,
                when.isoformat() if isinstance(when, datetime) else _s(when),
                int(entry.get(b"RFC822.SIZE", 0)),
                [_s(f) for f in entry.get(b"FLAGS", ())],
                _header(headers, "From"),
                _header(headers, "Subject"),
                structure(entry[b"BODYSTRUCTURE"]),
            )
        )
    return result


def _header(message: Any, name: str) -> str:
    try:
        return str(message.get(name, ""))
    except Exception:  # a malformed header: shown raw
        return _s(message.get_all(name, [""])[0])


def fetch_message(client: Any, folder: str, uid: int) -> bytes:
    """The whole message ``uid`` (``BODY.PEEK[]``: not marked seen)."""
    folder_info(client, folder)
    with seam(f"FETCH {uid}"):
        data = client.fetch([uid], ["BODY.PEEK[]"])
    if uid not in data:
        raise IMAPError(f"IMAP error: no message with UID {uid} in {folder}")
    body = data[uid].get(b"BODY[]")
    return body if isinstance(body, bytes) else b""


def fetch_part(client: Any, folder: str, uid: int, number: str) -> tuple[Part, bytes]:
    """Only part ``number`` of message ``uid``, transfer encoding undone, not marked seen.

    Raises:
        ConfigError: the message has no such part.
    """
    folder_info(client, folder)
    with seam(f"FETCH {uid} BODYSTRUCTURE"):
        data = client.fetch([uid], ["BODYSTRUCTURE"])
    if uid not in data:
        raise IMAPError(f"IMAP error: no message with UID {uid} in {folder}")
    tree = structure(data[uid][b"BODYSTRUCTURE"])
    part = tree.find(number)
    if part is None or part.type.startswith("multipart/"):
        numbers = ", ".join(p.number for p in tree.walk() if not p.type.startswith("multipart/"))
        raise ConfigError(f"message {uid} has no leaf part {number!r} (parts: {numbers})")
    key = f"BODY[{number}]"
    with seam(f"FETCH {uid} {key}"):
        got = client.fetch([uid], [f"BODY.PEEK[{number}]"])
    raw = got.get(uid, {}).get(key.encode("ascii"), b"") or b""
    return part, decode_transfer(raw, part.encoding)


def decode_transfer(raw: bytes, encoding: str) -> bytes:
    """Undo base64 or quoted-printable; other encodings are returned as they are."""
    if encoding == "base64":
        try:
            return base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            return raw
    if encoding == "quoted-printable":
        return quopri.decodestring(raw)
    return raw
