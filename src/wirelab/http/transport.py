"""The connections under chapter 9's requests session: recorded, trusted explicitly, lab-aware.

Split from :mod:`wirelab.http.client` (which re-exports every public name here, so
``wirelab.http.client.ContextAdapter`` and the rest keep working):

* :class:`Recorder` and the urllib3 pool classes whose connections count themselves and keep
  every byte they send (the ``-v`` framing and F53's "N requests over M connections");
* :class:`ContextAdapter`: HTTPS through one explicit ``SSLContext`` that must verify;
* :func:`lab_aware_context` and :func:`lab_url`: the lab's CA and ports for the lab's names.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from wirelab.errors import ConfigError
from wirelab.net.addresses import lab_address
from wirelab.net.tlsctx import client_context

__all__ = ["ContextAdapter", "Recorder", "lab_aware_context", "lab_url"]

_REQUEST_LINE = re.compile(rb"[A-Z]+ \S+ HTTP/1\.[01]\r\n")


# -- recording connections -------------------------------------------------------------------


@dataclass
class Recorder:
    """What a session's connections did: connections opened, bytes sent on each."""

    opened: int = 0
    sent: list[tuple[int, bytes]] = field(default_factory=list)

    def take(self) -> tuple[int, bytes]:
        """The connection number and the bytes of the last request sent (and forget them)."""
        if not self.sent:
            return 0, b""
        start = max(
            (i for i, (_, chunk) in enumerate(self.sent) if _REQUEST_LINE.match(chunk)),
            default=0,
        )
        number = self.sent[start][0]
        data = b"".join(chunk for n, chunk in self.sent[start:] if n == number)
        self.sent.clear()
        return number, data


def _dns_host(host: str) -> str:
    return lab_address(host) or host


def _recording_classes(recorder: Recorder) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes whose connections count themselves and keep what they send."""

    class _Mixin:
        _wirelab_number = 0

        def _wirelab_opened(self) -> None:
            recorder.opened += 1
            self._wirelab_number = recorder.opened

        def _wirelab_sent(self, data: Any) -> None:
            if isinstance(data, bytes | bytearray | memoryview):
                recorder.sent.append((self._wirelab_number, bytes(data)))

    class RecHTTP(_Mixin, HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

        def _new_conn(self) -> socket.socket:
            name = self._dns_host
            self._dns_host = _dns_host(name)  # a playground name connects to the lab
            try:
                return super()._new_conn()
            finally:
                self._dns_host = name  # Host, SNI and the certificate check keep the name

        def connect(self) -> None:
            super().connect()
            self._wirelab_opened()

        def send(self, data: Any) -> None:
            if self.sock is None:  # http.client connects lazily, inside send()
                self.connect()
            self._wirelab_sent(data)
            super().send(data)

    class RecHTTPS(RecHTTP, HTTPSConnection):
        """RecHTTP's recording over TLS (the MRO puts HTTPSConnection under RecHTTP)."""

    class Pool(HTTPConnectionPool):
        ConnectionCls = RecHTTP

    class SPool(HTTPSConnectionPool):
        ConnectionCls = RecHTTPS

    return {"http": Pool, "https": SPool}


class ContextAdapter(HTTPAdapter):
    """A requests adapter: HTTPS through ``ssl_context`` only, connections recorded.

    requests would otherwise load certifi's bundle (or ``verify=``, ``$REQUESTS_CA_BUNDLE``)
    into the context, or switch verification off with ``verify=False``; here the trust is
    the context's alone, and a context that does not verify is refused.
    """

    def __init__(self, ssl_context: ssl.SSLContext, recorder: Recorder, **kwargs: Any) -> None:
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigError("HTTPS needs a verifying context (CERT_REQUIRED, host names)")
        self._ssl_context = ssl_context
        self._recorder = recorder
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(
            connections, maxsize, block, **(pool_kwargs | {"ssl_context": self._ssl_context})
        )
        self.poolmanager.pool_classes_by_scheme = _recording_classes(self._recorder)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        if cert:
            raise ConfigError("client certificates belong in the SSLContext, not in cert=")


def _is_lab_host(host: str) -> bool:
    if lab_address(host) is not None:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def lab_aware_context(url: str, cafile: str | None = None) -> ssl.SSLContext:
    """The context to trust for ``url``: ``cafile``'s CAs if given; the lab CA for a lab
    name or loopback while a lab runs; else the system's trust store."""
    if cafile is not None:
        return client_context(cafile=cafile)
    host = urllib.parse.urlsplit(url).hostname or ""
    if _is_lab_host(host):
        from wirelab.lab.state import LabState

        try:
            return LabState.load().ssl_context()
        except ConfigError:
            pass
    return client_context()


def lab_url(url: str) -> str:
    """``url`` with the running lab's port filled in when it names a lab web host without one.

    ``https://www.example.com/get`` becomes ``https://www.example.com:10444/get`` (the port the
    lab's ``www`` service really listens on for that scheme); any other URL is returned as is.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        explicit = parts.port
    except ValueError:
        return url  # a bad port: the request reports it
    if explicit is not None or not parts.hostname or scheme not in ("http", "https"):
        return url
    from wirelab.lab.state import LabState

    try:
        state = LabState.load()
    except ConfigError:
        return url
    name = parts.hostname.lower()
    for ep in state.endpoints:
        if ep.host.lower() == name and ep.endpoint == scheme and ep.tls == (scheme == "https"):
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.hostname}:{ep.port}"))
    return url
