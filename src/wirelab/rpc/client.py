"""Clients for chapter 18: XML-RPC, JSON-RPC 2.0 and RPyC, with every failure one clear error.

* :class:`XMLRPCClient` is the stdlib's ``ServerProxy`` with a transport that parses answers
  with the defused parser (:func:`wirelab.rpc.xmlcodec.safe_loads`), reads at most
  ``max_answer`` bytes, and has a timeout. A fault becomes :class:`RPCFault` (code and
  message); a transport failure becomes the project's transport error.
* :class:`JSONRPCClient` speaks JSON-RPC 2.0 over HTTP/1.1 keep-alive: calls, notifications
  and batches; an error answer is :class:`~wirelab.rpc.jsoncodec.JSONRPCError`.
* :func:`count_lines` hands a local file and a callback to the RPyC line counter. The file
  travels as an object exposing only ``readlines``: no ``allow_public_attrs`` is needed, so
  the server can reach nothing else of ours.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wirelab.errors import ConfigError, RemoteProtocolError, Timeout, WirelabError
from wirelab.net.streams import map_os_error
from wirelab.rpc.jsoncodec import Call, decode_answer, decode_batch, encode_batch, encode_call
from wirelab.rpc.xmlcodec import XMLRejected, safe_loads

__all__ = [
    "DEFAULT_MAX_ANSWER",
    "JSONRPCClient",
    "MethodInfo",
    "RPCFault",
    "XMLRPCClient",
    "count_lines",
    "parse_url",
]

#: Largest answer read, bytes.
DEFAULT_MAX_ANSWER = 4 << 20


class RPCFault(RemoteProtocolError):
    """The XML-RPC server answered with a fault (``code`` and ``message``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"fault {code}: {message}", code=code)
        self.message = message


def parse_url(url: str) -> tuple[str, int, str]:
    """``http://host:port/path`` -> ``(host, port, path)`` (port 80 and path ``/`` by default).

    Raises:
        ConfigError: not an http URL with a host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a URL: {exc}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http://HOST:PORT/PATH URL")
    return parts.hostname, port, parts.path or "/"


class _Transport(xmlrpc.client.Transport):
    """The stdlib transport, reading answers with the defused parser, bounded and timed."""

    def __init__(self, timeout: float, max_answer: int) -> None:
        super().__init__(use_builtin_types=True)
        self.timeout = timeout
        self.max_answer = max_answer

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def parse_response(self, response: http.client.HTTPResponse) -> tuple[Any, ...]:
        data = response.read(self.max_answer + 1)
        if len(data) > self.max_answer:
            raise RemoteProtocolError(f"the answer is over {self.max_answer} bytes")
        try:
            params, _ = safe_loads(data)
        except XMLRejected as exc:
            raise RemoteProtocolError(f"the answer is not XML-RPC we accept: {exc}") from None
        return params


@dataclass(frozen=True)
class MethodInfo:
    """What introspection says about one method."""

    name: str
    signatures: list[Any] | None
    help: str


def _call_seam(function: Callable[[], Any], where: str) -> Any:
    try:
        return function()
    except xmlrpc.client.Fault as fault:
        raise RPCFault(fault.faultCode, str(fault.faultString)) from None
    except xmlrpc.client.ProtocolError as exc:
        raise RemoteProtocolError(
            f"{where}: HTTP {exc.errcode} {exc.errmsg}", code=exc.errcode
        ) from None
    except WirelabError:
        raise
    except (http.client.HTTPException, ValueError) as exc:
        raise RemoteProtocolError(f"{where}: not an HTTP answer: {exc}") from exc
    except TimeoutError as exc:
        raise Timeout(f"{where}: no answer in time") from exc
    except OSError as exc:
        raise map_os_error(exc, where) from exc


class XMLRPCClient:
    """Call an XML-RPC server.

    Args:
        url: ``http://HOST:PORT/`` (or ``/RPC2``).
        timeout: seconds for the connection and each answer.
        max_answer: largest answer read, bytes.
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, max_answer: int = DEFAULT_MAX_ANSWER
    ) -> None:
        host, port, _ = parse_url(url)
        self.url = url
        self.where = f"{host}:{port}"
        self._proxy = xmlrpc.client.ServerProxy(
            url, transport=_Transport(timeout, max_answer), allow_none=False, use_builtin_types=True
        )

    def __enter__(self) -> XMLRPCClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connection."""
        self._proxy("close")()

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; its result.

        Raises:
            RPCFault: the server answered with a fault.
            ConfigError: a parameter XML-RPC cannot carry (None, an integer over 32 bits).
        """
        function = getattr(self._proxy, method)
        try:
            xmlrpc.client.dumps(tuple(params), method)
        except (TypeError, OverflowError) as exc:
            raise ConfigError(f"XML-RPC cannot carry that parameter: {exc}") from None
        return _call_seam(lambda: function(*params), self.where)

    def multicall(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one request (``system.multicall``): each result, or its fault."""
        batch = xmlrpc.client.MultiCall(self._proxy)
        for method, params in calls:
            getattr(batch, method)(*params)
        answers = _call_seam(lambda: batch().results, self.where)
        out: list[Any] = []
        for answer in answers:
            if isinstance(answer, dict) and "faultCode" in answer:
                out.append(RPCFault(int(answer["faultCode"]), str(answer.get("faultString", ""))))
            elif isinstance(answer, list) and len(answer) == 1:
                out.append(answer[0])
            else:
                raise RemoteProtocolError(f"{self.where}: a multicall answer is {answer!r:.80}")
        return out

    def introspect(self, *, include_system: bool = False) -> list[MethodInfo]:
        """Every method the server lists, with its signatures and help."""
        names = self.call("system.listMethods")
        infos = []
        for name in names:
            if name.startswith("system.") and not include_system:
                continue
            signatures = self.call("system.methodSignature", name)
            infos.append(
                MethodInfo(
                    name,
                    signatures if isinstance(signatures, list) and signatures else None,
                    str(self.call("system.methodHelp", name)),
                )
            )
        return infos


class JSONRPCClient:
    """Call a JSON-RPC 2.0 server over HTTP/1.1 (one kept-alive connection).

    Args:
        url: ``http://HOST:PORT/``.
        timeout: seconds for the connection and each answer.
        max_answer: largest answer read, bytes.
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, max_answer: int = DEFAULT_MAX_ANSWER
    ) -> None:
        self.host, self.port, self.path = parse_url(url)
        self.where = f"{self.host}:{self.port}"
        self.max_answer = max_answer
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def __enter__(self) -> JSONRPCClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _post(self, body: bytes) -> bytes:
        def exchange() -> bytes:
            self._conn.request("POST", self.path, body, {"Content-Type": "application/json-rpc"})
            response = self._conn.getresponse()
            data = response.read(self.max_answer + 1)
            if len(data) > self.max_answer:
                self._conn.close()
                raise RemoteProtocolError(
                    f"{self.where}: the answer is over {self.max_answer} bytes"
                )
            if response.status != 200:
                raise RemoteProtocolError(
                    f"{self.where}: HTTP {response.status} {response.reason}", code=response.status
                )
            return data

        try:
            return _call_seam(exchange, self.where)  # type: ignore[no-any-return]
        except WirelabError:
            self._conn.close()
            raise

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; its result.

        Raises:
            JSONRPCError: the server answered with an error (code, message, data).
        """
        body, request_id = encode_call(Call(method, params))
        assert request_id is not None
        return decode_answer(self._post(body), request_id)

    def notify(self, method: str, *params: Any) -> None:
        """Send a notification: the server answers nothing."""
        body, _ = encode_call(Call(method, params, notify=True))
        self._post(body)

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Several calls in one request: each result, its ``JSONRPCError``, or ``None`` (notify)."""
        body, ids = encode_batch(calls)
        return decode_batch(self._post(body), ids)


class _ReadOnlyLines:
    """What the server sees of a local file: its lines, and nothing else."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = tuple(lines)

    def exposed_readlines(self) -> tuple[str, ...]:
        return self._lines


def count_lines(
    host: str,
    port: int,
    path: Path,
    on_line: Callable[[str], Any],
    *,
    timeout: float = 10.0,
) -> int:
    """Have the RPyC line counter read ``path`` (ours) and call ``on_line`` (ours) per line.

    Raises:
        ConfigError: the file cannot be read.
        TransportError: the server cannot be reached or broke the connection.
        RemoteProtocolError: the server raised an error.
    """
    import rpyc

    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    where = f"{host}:{port}"
    try:
        conn = rpyc.connect(
            host,
            port,
            config={"sync_request_timeout": timeout, "allow_pickle": False},
            keepalive=True,
        )
    except TimeoutError as exc:
        raise Timeout(f"{where}: no connection in time") from exc
    except (OSError, socket.gaierror) as exc:
        raise map_os_error(exc, where) from exc
    try:
        return int(conn.root.line_counter(_ReadOnlyLines(lines), on_line))
    except EOFError as exc:
        raise map_os_error(ConnectionResetError(str(exc)), where) from exc
    except TimeoutError as exc:
        raise Timeout(f"{where}: no answer in {timeout:g} s") from exc
    except OSError as exc:
        raise map_os_error(exc, where) from exc
    except Exception as exc:  # the server's exception, rebuilt by rpyc (any class it names)
        message = str(exc).split("\n\n=====", 1)[0].strip() or type(exc).__name__
        raise RemoteProtocolError(
            f"{where}: the server raised {type(exc).__name__}: {message[:200]}"
        ) from None
    finally:
        conn.close()
