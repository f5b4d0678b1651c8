"""SMTP clients on the stdlib ``smtplib`` (chapter 13, F78-F82), fixed where the book was weak.

* Every connection has a timeout and, for TLS, the caller's explicit :class:`ssl.SSLContext`
  (the lab's trusts the lab CA and checks the host name: the book's ``tls.py`` did not).
* :func:`send` keeps the envelope (``MAIL FROM``, ``RCPT TO``) apart from the headers, reports
  each refused recipient, and never logs in without TLS unless ``insecure_plaintext`` says so.
  With ``starttls="require"`` (the default when logging in) a server that does not offer
  STARTTLS is an error, not a silent downgrade; after the upgrade it says EHLO again.
* :func:`ehlo` reports the capabilities (EHLO, or HELO when EHLO is refused) and SIZE.
* :func:`mail_exchanger` finds where mail for a domain goes with MX in the lab DNS.
* The trace (``-v``) is smtplib's debug conversation, passed to a callback, with the
  credentials of AUTH lines hidden.

Errors come in the book's three classes, each one line: name resolution
(:class:`~wirelab.errors.NameResolutionError`), the network (:class:`ConnectError`,
:class:`Timeout`, :class:`TLSError` ...) and SMTP itself (:class:`SMTPError`, with the code).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from wirelab.errors import (
    Broken,
    ConfigError,
    LocalProtocolError,
    RemoteProtocolError,
    Timeout,
    TLSError,
    WirelabError,
)
from wirelab.net.addresses import connect_tcp

__all__ = [
    "Capabilities",
    "SMTPError",
    "SendResult",
    "Trace",
    "crlf",
    "ehlo",
    "mail_exchanger",
    "send",
]

#: The longest trace line shown (``data:`` lines carry the whole message).
MAX_TRACE_CHARS = 2000

#: Receives one line of the conversation.
Trace = Callable[[str], None]
StartTLS = Literal["require", "if-offered", "never"]


class SMTPError(RemoteProtocolError):
    """The SMTP server refused (its code and text are in the message)."""


class _TracingSMTP(smtplib.SMTP):
    """smtplib with a trace callback and connections through wirelab's resolver (lab names)."""

    def __init__(self, trace: Trace | None, **kwargs: Any) -> None:
        self._trace = trace
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect_tcp(host, port, timeout=timeout)

    _hiding = False

    def login(self, user: str, password: str, *, initial_response_ok: bool = True) -> Any:
        self._hiding = True
        try:
            return super().login(user, password, initial_response_ok=initial_response_ok)
        finally:
            self._hiding = False

    def _print_debug(self, *args: Any) -> None:
        if self._trace is None:
            return
        text = " ".join(str(arg) for arg in args)
        if self._hiding and text.startswith("send:"):
            text = "send: (credentials hidden)"
        if len(text) > MAX_TRACE_CHARS:  # the message itself: its start, and its size
            text = f"{text[:MAX_TRACE_CHARS]}... ({len(text)} characters in all)"
        self._trace(text)


class _TracingSMTPSSL(_TracingSMTP):
    """Implicit TLS: the handshake right after connecting, with the caller's context."""

    def __init__(
        self,
        trace: Trace | None,
        context: ssl.SSLContext,
        *,
        tls_hostname: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._context = context
        self._tls_hostname = tls_hostname
        super().__init__(trace, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        try:
            return self._context.wrap_socket(sock, server_hostname=self._tls_hostname or host)
        except BaseException:
            sock.close()
            raise


@dataclass
class Capabilities:
    """What the server said to EHLO (or HELO)."""

    host: str
    port: int
    esmtp: bool
    greeting: str
    features: dict[str, str] = field(default_factory=dict)
    tls: bool = False

    @property
    def size(self) -> int | None:
        """The SIZE limit in bytes, when advertised with a number."""
        value = self.features.get("size", "").strip()
        return int(value) if value.isdigit() and value != "0" else None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "host": self.host,
            "port": self.port,
            "esmtp": self.esmtp,
            "greeting": self.greeting,
            "tls": self.tls,
            "size": self.size,
            "features": self.features,
        }


@dataclass
class SendResult:
    """What happened to a message: who took it, who was refused, over which connection."""

    host: str
    port: int
    accepted: list[str]
    refused: dict[str, tuple[int, str]]
    tls: bool
    authenticated: bool

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "host": self.host,
            "port": self.port,
            "accepted": self.accepted,
            "refused": {rcpt: list(reply) for rcpt, reply in self.refused.items()},
            "tls": self.tls,
            "authenticated": self.authenticated,
        }


_LINE_END = re.compile(rb"\r\n|\r|\n")


def crlf(data: bytes) -> bytes:
    """``data`` with every line end (LF, CR or CRLF) made CRLF, as SMTP requires.

    A file written on Unix ends lines with LF; sent as it is, a careful server (ours) refuses
    the bare LFs. smtplib converts line ends only for ``str`` messages, never for bytes.
    """
    return _LINE_END.sub(b"\r\n", data)


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


@contextmanager
def _seam(where: str) -> Iterator[None]:
    """Map smtplib's and the socket layer's exceptions to wirelab's, one line each."""
    try:
        yield
    except WirelabError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(
            f"{rcpt}: {code} {_reply_text(text)}" for rcpt, (code, text) in exc.recipients.items()
        )
        raise SMTPError(f"SMTP error: every recipient was refused ({detail})") from exc
    except smtplib.SMTPResponseException as exc:
        raise SMTPError(
            f"SMTP error: {where}: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
            code=exc.smtp_code,
        ) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise Broken(f"network failure: {where}: the server closed the connection") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise SMTPError(f"SMTP error: {where}: {exc}") from exc
    except smtplib.SMTPException as exc:
        raise SMTPError(f"SMTP error: {where}: {exc}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.verify_message or exc}") from exc
    except ssl.SSLError as exc:
        raise TLSError(f"TLS failure: {where}: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise Timeout(f"network failure: {where}: timed out") from exc
    except OSError as exc:
        raise Broken(f"network failure: {where}: {exc.strerror or exc}") from exc


def _open(
    host: str,
    port: int,
    *,
    timeout: float,
    implicit_tls: bool,
    context: ssl.SSLContext | None,
    trace: Trace | None,
    tls_hostname: str | None = None,
) -> _TracingSMTP:
    where = f"{host} port {port}"
    if implicit_tls and context is None:
        raise ConfigError("implicit TLS needs a TLS context")
    with _seam(f"connecting to {where}"):
        if implicit_tls:
            assert context is not None
            client: _TracingSMTP = _TracingSMTPSSL(
                trace, context, timeout=timeout, tls_hostname=tls_hostname
            )
        else:
            client = _TracingSMTP(trace, timeout=timeout)
        if trace is not None:
            client.set_debuglevel(1)
        code, greeting = client.connect(host, port)
        # smtplib's server_hostname for STARTTLS: the name the certificate must carry
        client._host = tls_hostname or host  # type: ignore[attr-defined]
        if code != 220:
            client.close()
            raise SMTPError(
                f"SMTP error: {where} greeted with {code} {_reply_text(greeting)}", code=code
            )
    return client


def _hello(client: _TracingSMTP, where: str) -> bool:
    """EHLO, falling back to HELO as the book's ehlo.py does; True when ESMTP."""
    with _seam(where):
        code, _ = client.ehlo()
        if 200 <= code <= 299:
            return True
        code, _ = client.helo()
        if not 200 <= code <= 299:
            raise SMTPError(f"SMTP error: {where}: HELO refused: {code}", code=code)
        return False


def ehlo(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    context: ssl.SSLContext | None = None,
    starttls: bool = False,
    implicit_tls: bool = False,
    trace: Trace | None = None,
    tls_hostname: str | None = None,
) -> Capabilities:
    """Greet the server and report its capabilities (after STARTTLS with ``starttls``).

    Raises:
        NameResolutionError, ConnectError, Timeout, TLSError, SMTPError: one line each.
    """
    client = _open(
        host,
        port,
        timeout=timeout,
        implicit_tls=implicit_tls,
        context=context,
        trace=trace,
        tls_hostname=tls_hostname,
    )
    where = f"{host} port {port}"
    try:
        greeting = _reply_text(client.ehlo_resp or b"")
        esmtp = _hello(client, where)
        tls = implicit_tls
        if starttls:
            if context is None:
                raise ConfigError("STARTTLS needs a TLS context")
            with _seam(f"STARTTLS with {where}"):
                if not client.has_extn("starttls"):
                    raise SMTPError(f"SMTP error: {where} does not offer STARTTLS")
                client.starttls(context=context)
            esmtp = _hello(client, where)
            tls = True
        greeting = _reply_text((client.ehlo_resp if esmtp else client.helo_resp) or b"")
        features = {name: value.strip() for name, value in client.esmtp_features.items()}
        return Capabilities(host, port, esmtp, greeting, features, tls)
    finally:
        _quit(client)


def _quit(client: _TracingSMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def send(
    host: str,
    port: int,
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    context: ssl.SSLContext | None = None,
    starttls: StartTLS = "if-offered",
    implicit_tls: bool = False,
    user: str | None = None,
    password: str | None = None,
    insecure_plaintext: bool = False,
    timeout: float = 30.0,
    trace: Trace | None = None,
    tls_hostname: str | None = None,
) -> SendResult:
    """Send ``message`` (bytes, CRLF line ends) to ``recipients``; the envelope is separate.

    Args:
        starttls: ``"require"`` fails when the server does not offer it; ``"if-offered"``
            upgrades when it can; ``"never"`` stays in the clear (the book's simple.py).
        user, password: log in (AUTH) after TLS; without TLS only with ``insecure_plaintext``.
        tls_hostname: the name the server's certificate must carry, when ``host`` is an
            address (default: ``host``).

    Raises:
        ConfigError: no recipients, an address with a line break, or a login without TLS.
        LocalProtocolError: the message is larger than the server's SIZE.
        SMTPError: the server refused (every recipient, the sender, the data, the login).
        NameResolutionError, ConnectError, Timeout, TLSError, Broken: one line each.
    """
    if not recipients:
        raise ConfigError("give at least one recipient")
    for address in (sender, *recipients):
        if any(ch in address for ch in "\r\n\0") or len(address) > 320:
            raise ConfigError(f"{address[:60]!r} is not an e-mail address")
    if user is not None and not (implicit_tls or starttls != "never" or insecure_plaintext):
        raise ConfigError("refusing to log in without TLS (use --insecure-plaintext to do it)")
    if (starttls != "never" or implicit_tls) and context is None:
        raise ConfigError("TLS needs an explicit SSL context")
    client = _open(
        host,
        port,
        timeout=timeout,
        implicit_tls=implicit_tls,
        context=context,
        trace=trace,
        tls_hostname=tls_hostname,
    )
    where = f"{host} port {port}"
    try:
        esmtp = _hello(client, where)
        tls = implicit_tls
        if not tls and starttls != "never":
            offered = esmtp and client.has_extn("starttls")
            if offered:
                assert context is not None
                with _seam(f"STARTTLS with {where}"):
                    client.starttls(context=context)
                esmtp = _hello(client, where)
                tls = True
            elif starttls == "require" or (user is not None and not insecure_plaintext):
                raise SMTPError(f"SMTP error: {where} does not offer STARTTLS; not sending")
        size = client.esmtp_features.get("size", "").strip()
        if esmtp and size.isdigit() and int(size) and len(message) > int(size):
            raise LocalProtocolError(
                f"the message is {len(message)} bytes, over the server's SIZE of {size}"
            )
        authenticated = False
        if user is not None:
            if not tls and not insecure_plaintext:
                raise ConfigError("refusing to log in without TLS")
            with _seam(f"logging in to {where}"):
                client.login(user, password or "")
            authenticated = True
        with _seam(f"sending to {where}"):
            refused_raw = client.sendmail(sender, list(recipients), message)
        refused = {rcpt: (code, _reply_text(text)) for rcpt, (code, text) in refused_raw.items()}
        accepted = [rcpt for rcpt in recipients if rcpt not in refused]
        return SendResult(host, port, accepted, refused, tls, authenticated)
    finally:
        _quit(client)


def mail_exchanger(domain: str, *, dns_server: str | None = None) -> str:
    """The host to deliver mail for ``domain`` to: its best MX in the lab DNS (or ``dns_server``).

    Raises:
        NameResolutionError: no such domain, a null MX, or no usable exchange.
        Timeout: the DNS server did not answer.
    """
    from wirelab.dns.client import choose_server, mail_routes, make_resolver
    from wirelab.errors import NameResolutionError

    resolver = make_resolver(choose_server(dns_server))
    routes = mail_routes(domain, resolver=resolver)
    if routes.null_mx:
        raise NameResolutionError(f"name service failure: {domain} accepts no mail (null MX)")
    for host in routes.hosts:
        if host.error is None:
            return host.exchange
    raise NameResolutionError(f"name service failure: no mail exchanger for {domain}")
