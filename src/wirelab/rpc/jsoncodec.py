"""JSON-RPC 2.0 (jsonrpc.org specification, 2010), sans-I/O: the server's dispatcher and the
client's requests and answers.

Server side, :class:`JSONRPCDispatcher` answers one request or a batch (section 6), stays
silent for notifications (section 4.1: a request without ``id``), and reports every failure
with the spec's codes (section 5.1): -32700 parse error, -32600 invalid request, -32601
method not found, -32602 invalid params, -32603 internal error, with a message in our words
and, where it helps, ``data``. A batch holds at most ``max_batch`` requests.

Client side, :func:`encode_call`/:func:`encode_batch` build requests and
:func:`decode_answer`/:func:`decode_batch` read answers; an error answer becomes a
:class:`JSONRPCError` carrying ``code``, ``message`` and ``data``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wirelab.errors import RemoteProtocolError
from wirelab.rpc.functions import RPCArgumentError

__all__ = [
    "DEFAULT_MAX_BATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "Call",
    "JSONRPCDispatcher",
    "JSONRPCError",
    "decode_answer",
    "decode_batch",
    "encode_batch",
    "encode_call",
]

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: Requests in one batch at most (each costs a dispatch; 1 MiB of tiny requests is ~40,000).
DEFAULT_MAX_BATCH = 1000

_ids = itertools.count(1)


class JSONRPCError(RemoteProtocolError):
    """The server answered a call with a JSON-RPC error object (section 5.1)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}", code=code)
        self.message = message
        self.data = data


class _Failure(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _error(code: int, message: str, request_id: Any = None, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"id": request_id, "jsonrpc": "2.0", "error": error}  # jsonrpclib's key order


class JSONRPCDispatcher:
    """Registered functions, answering JSON-RPC 2.0 requests.

    Args:
        max_batch: the most requests one batch may hold.
    """

    def __init__(self, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.max_batch = max_batch
        self.funcs: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, function: Callable[..., Any]) -> None:
        """Make ``function`` callable as ``name``."""
        self.funcs[name] = function

    def dispatch_bytes(self, data: bytes) -> bytes | None:
        """Answer ``data`` (a request or a batch); ``None`` if nothing is owed (notifications)."""
        try:
            document = json.loads(data)
        except RecursionError:
            return _dumps(_error(PARSE_ERROR, "parse error: nested too deep"))
        except (ValueError, UnicodeDecodeError) as exc:
            return _dumps(_error(PARSE_ERROR, f"parse error: {str(exc)[:120]}"))
        if isinstance(document, list):
            if not document:
                return _dumps(_error(INVALID_REQUEST, "invalid request: an empty batch"))
            if len(document) > self.max_batch:
                return _dumps(
                    _error(INVALID_REQUEST, f"invalid request: over {self.max_batch} in a batch")
                )
            answers = [a for a in (self._one(item) for item in document) if a is not None]
            return _dumps(answers) if answers else None
        answer = self._one(document)
        return None if answer is None else _dumps(answer)

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(INVALID_REQUEST, "invalid request: not an object")
        request_id = request.get("id")
        if not isinstance(request_id, str | int | float | type(None)) or isinstance(
            request_id, bool
        ):
            return _error(INVALID_REQUEST, "invalid request: id must be a string or a number")
        method = request.get("method")
        params = request.get("params", [])
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(
                INVALID_REQUEST, "invalid request: need jsonrpc 2.0 and a method", request_id
            )
        if not isinstance(params, list | dict):
            return _error(
                INVALID_REQUEST, "invalid request: params must be an array or an object", request_id
            )
        notification = "id" not in request
        try:
            result = self._call(method, params)
        except _Failure as failure:
            if notification:
                return None
            return _error(failure.code, failure.message, request_id, failure.data)
        if notification:
            return None
        return {"result": result, "id": request_id, "jsonrpc": "2.0"}  # jsonrpclib's key order

    def _call(self, method: str, params: list[Any] | dict[str, Any]) -> Any:
        function = self.funcs.get(method)
        if function is None:
            shown = method if len(method) <= 80 else method[:77] + "..."
            raise _Failure(METHOD_NOT_FOUND, f"method {shown!r} not found")
        try:
            result = function(*params) if isinstance(params, list) else function(**params)
            _dumps(result)  # an answer we cannot encode fails here, as an internal error
            return result
        except RPCArgumentError as exc:
            raise _Failure(INVALID_PARAMS, "invalid params", str(exc)) from None
        except TypeError as exc:
            tb = exc.__traceback__
            if tb is not None and tb.tb_next is None:
                raise _Failure(INVALID_PARAMS, "invalid params", _first_line(exc)) from None
            log.warning("json-rpc %s failed: %s", method, _first_line(exc))
            raise _Failure(INTERNAL_ERROR, "internal error", f"{method} failed") from None
        except Exception as exc:  # a bug of ours: one line in the log, an error to the client
            log.warning("json-rpc %s failed: %s", method, _first_line(exc))
            raise _Failure(INTERNAL_ERROR, "internal error", f"{method} failed") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


#: ``json.dumps(document, allow_nan=False)`` builds this encoder on every call; one will do.
_ENCODE = json.JSONEncoder(allow_nan=False).encode


def _dumps(document: Any) -> bytes:
    # ASCII with \u escapes, keys in jsonrpclib-pelix's order: the bytes of the book's server.
    return _ENCODE(document).encode("ascii")


# -- the client's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of a batch: ``notify`` calls get no answer."""

    method: str
    params: Sequence[Any] | dict[str, Any] = ()
    notify: bool = False


def _request(call: Call) -> tuple[dict[str, Any], int | None]:
    params = dict(call.params) if isinstance(call.params, dict) else list(call.params)
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": call.method, "params": params}
    if call.notify:
        return request, None
    request_id = next(_ids)
    request["id"] = request_id
    return request, request_id


def encode_call(call: Call) -> tuple[bytes, int | None]:
    """The bytes of one request and its id (``None`` for a notification)."""
    request, request_id = _request(call)
    return _dumps(request), request_id


def encode_batch(calls: Sequence[Call]) -> tuple[bytes, list[int | None]]:
    """The bytes of a batch and the id of each call, in order."""
    pairs = [_request(call) for call in calls]
    return _dumps([request for request, _ in pairs]), [request_id for _, request_id in pairs]


def _parse(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"the answer is not JSON: {str(exc)[:120]}") from None


def _outcome(answer: Any) -> Any:
    """The result of one answer object, or the :class:`JSONRPCError` it carries."""
    if not isinstance(answer, dict):
        raise RemoteProtocolError("the answer is not a JSON-RPC response object")
    if "error" in answer:
        error = answer["error"]
        if not isinstance(error, dict):
            raise RemoteProtocolError("the error of the answer is not an object")
        code = error.get("code")
        return JSONRPCError(
            code if isinstance(code, int) else 0, str(error.get("message", "")), error.get("data")
        )
    if "result" not in answer:
        raise RemoteProtocolError("the answer has neither result nor error")
    return answer["result"]


def decode_answer(data: bytes, request_id: int) -> Any:
    """The result of one call's answer.

    Raises:
        JSONRPCError: the server answered with an error object.
        RemoteProtocolError: the answer is not JSON-RPC, or answers another id.
    """
    answer = _parse(data)
    outcome = _outcome(answer)
    if isinstance(outcome, JSONRPCError):
        raise outcome
    if answer.get("id") != request_id:
        raise RemoteProtocolError(f"the answer is for id {answer.get('id')!r}, not {request_id}")
    return outcome


def decode_batch(data: bytes, ids: Sequence[int | None]) -> list[Any]:
    """The outcome of each call of a batch, in the order sent: a result, a
    :class:`JSONRPCError`, or ``None`` for a notification.

    Raises:
        JSONRPCError: the server refused the whole batch.
        RemoteProtocolError: the answer is not JSON-RPC, or an answer is missing.
    """
    wanted = [i for i in ids if i is not None]
    if not data.strip():
        if wanted:
            raise RemoteProtocolError("no answer for a batch that needed one")
        return [None] * len(ids)
    answers = _parse(data)
    if isinstance(answers, dict):  # the batch as a whole was refused
        outcome = _outcome(answers)
        if isinstance(outcome, JSONRPCError):
            raise outcome
        raise RemoteProtocolError("a single answer to a batch")
    if not isinstance(answers, list):
        raise RemoteProtocolError("the answer to a batch is not an array")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    results: list[Any] = []
    for request_id in ids:
        if request_id is None:
            results.append(None)
            continue
        if request_id not in by_id:
            raise RemoteProtocolError(f"no answer for id {request_id} in the batch")
        results.append(_outcome(by_id[request_id]))
    return results
