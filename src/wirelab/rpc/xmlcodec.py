"""XML-RPC (xmlrpc.com spec, 1999) without XML attacks: bytes of a call in, bytes of an answer out.

The stdlib's :func:`xmlrpc.client.loads` parses with expat as it comes: entity declarations
(billion laughs, quadratic blowup), external entities and any nesting depth are all accepted
(the stdlib docs warn it is "not secure against maliciously constructed data"). Here every
document is parsed by :class:`defusedxml.xmlrpc.DefusedExpatParser` with DTDs forbidden
outright (XML-RPC has no use for one), under a nesting limit, after a size limit. Answers are
marshalled by the stdlib.

:class:`XMLRPCDispatcher` keeps the stdlib's registry, introspection (``system.listMethods``,
``system.methodSignature``, ``system.methodHelp``) and ``system.multicall``, and maps every
failure to a fault with a code from the XML-RPC fault-code interoperability convention
(-32700 parse error, -32600 invalid request, -32601 method not found, -32602 invalid params,
-32603 internal error) and a message in our words: no Python class names, no tracebacks.
Only registered functions are callable: ``register_instance`` and ``allow_dotted_names`` are
never used, so ``quadratic.__globals__`` is an unknown method.
"""

from __future__ import annotations

import logging
import re
import xmlrpc.client
from collections.abc import Callable
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

from wirelab.rpc.functions import RPCArgumentError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "FAULT_INTERNAL",
    "FAULT_INVALID_PARAMS",
    "FAULT_INVALID_REQUEST",
    "FAULT_METHOD_NOT_FOUND",
    "FAULT_PARSE",
    "XMLRPCDispatcher",
    "XMLRejected",
    "fast_dumps_result",
    "fast_loads_call",
    "safe_loads",
]

log = logging.getLogger(__name__)

FAULT_PARSE = -32700
FAULT_INVALID_REQUEST = -32600
FAULT_METHOD_NOT_FOUND = -32601
FAULT_INVALID_PARAMS = -32602
FAULT_INTERNAL = -32603

#: Deepest element nesting accepted. A call needs 4 levels plus 3 for each nested
#: array or struct (``<value><array><data>``), so 96 leaves 30 levels of nested values.
DEFAULT_MAX_DEPTH = 96


class XMLRejected(Exception):
    """The document is not XML-RPC we accept (bomb, entity, DTD, too deep, malformed)."""


class _BoundedUnmarshaller(xmlrpc.client.Unmarshaller):
    """The stdlib's unmarshaller, refusing documents nested deeper than ``max_depth``."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(use_datetime=False, use_builtin_types=True)
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: str, attrs: Any) -> None:
        self._depth += 1
        if self._depth > self._max_depth:
            raise XMLRejected(f"elements nested deeper than {self._max_depth}")
        super().start(tag, attrs)

    def end(self, tag: str) -> None:
        self._depth -= 1
        super().end(tag)


def safe_loads(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[tuple[Any, ...], str | None]:
    """Parse an XML-RPC call or answer: ``(params, method name or None)``.

    Raises:
        XMLRejected: a DTD, an entity, an external reference, nesting over ``max_depth``,
            malformed XML or an unreadable value (the reason in one line).
        xmlrpc.client.Fault: the document is a fault answer.
    """
    target = _BoundedUnmarshaller(max_depth)
    parser = DefusedExpatParser(target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(data)
        parser.close()
        return target.close(), target.getmethodname()
    except xmlrpc.client.Fault:
        raise
    except XMLRejected:
        raise
    except DefusedXmlException as exc:
        raise XMLRejected(f"refused: {type(exc).__name__} ({_first_line(exc)})") from None
    except RecursionError:
        raise XMLRejected("nesting too deep") from None
    except Exception as exc:  # expat errors, bad values (int('x')), wrong structure
        raise XMLRejected(f"not an XML-RPC document: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# -- the fast path: the common call and answer, without a parser ------------------------------
#
# Nearly every call a client sends is a method name and a few scalars, in the shape
# xmlrpc.client.dumps writes. Such a document is matched by one strict expression over the
# bytes; anything else (a DTD, an entity or character reference, a comment, CDATA, a namespace,
# non-ASCII text, an array or struct, a big integer, another encoding ...) does not match and
# goes to the defused parser as before. The expression admits no markup declaration at all,
# so nothing an attack needs can take this path. The answers are the parser's, exactly: a
# Hypothesis property checks it on generated and mutated documents (tests/rpc/test_fastpath.py).

_S = rb"[ \t\r\n]*"
#: Character data kept as it is by expat: printable ASCII, tab and LF, but & < > (which a
#: well-formed text escapes, so it is the parser's) and CR (which expat turns into LF).
_TEXT = rb"[\t\n\x20-\x25\x27-\x3b\x3d\x3f-\x7e]*"
_CALL = re.compile(
    rb"(?:<\?xml version=(['\"])1\.0\1(?: encoding=(['\"])[Uu][Tt][Ff]-8\2)?[ \t]*\?>)?"
    + _S
    + rb"<methodCall>"
    + _S
    + rb"<methodName>([A-Za-z0-9_.:]{1,256})</methodName>"
    + _S
    + rb"<params>"
    + _S
    + rb"(.*)</params>"
    + _S
    + rb"</methodCall>"
    + _S,
    re.DOTALL,
)
_PARAM = re.compile(
    rb"<param>"
    + _S
    + rb"<value>(?:"
    + rb"<(int|i4)>([+-]?[0-9]{1,18})</\1>"
    + rb"|<boolean>([01])</boolean>"
    + rb"|<double>([+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,3})?)"
    + rb"</double>"
    + rb"|<string>("
    + _TEXT
    + rb")</string>"
    + rb"|("
    + _TEXT
    + rb"))</value>"
    + _S
    + rb"</param>"
    + _S
)
# Groups of _PARAM: 1 the integer's tag (for the back reference), 2 the integer, 3 the
# boolean, 4 the double, 5 the string, 6 a bare value (a string too).
_ANSWER_HEAD = b"<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"
_ANSWER_TAIL = b"</param>\n</params>\n</methodResponse>\n"


def fast_loads_call(data: bytes) -> tuple[tuple[Any, ...], str] | None:
    """A plain call (a name and scalar parameters) read without a parser: ``(params, name)``
    exactly as :func:`safe_loads` reads it; ``None`` for any other document."""
    call = _CALL.fullmatch(data)
    if call is None:
        return None
    block = call[4]
    params: list[Any] = []
    append = params.append
    match = _PARAM.match
    pos = 0
    end = len(block)
    while pos < end:
        param = match(block, pos)
        if param is None:
            return None
        pos = param.end()
        number, boolean, double, string, bare = param.group(2, 3, 4, 5, 6)
        if number is not None:
            append(int(number))
        elif boolean is not None:
            append(boolean == b"1")
        elif double is not None:
            append(float(double))
        elif string is not None:
            append(string.decode("ascii"))
        else:
            append(bare.decode("ascii"))
    name: bytes = call[3]
    return tuple(params), name.decode("ascii")


def fast_dumps_result(result: Any) -> bytes | None:
    """The answer carrying ``result``, byte for byte what ``xmlrpc.client.dumps((result,),
    methodresponse=True, encoding="utf-8").encode()`` gives, for an int, bool, float or str;
    ``None`` for anything else (or anything the stdlib would refuse)."""
    kind = type(result)
    if kind is int:
        if not xmlrpc.client.MININT <= result <= xmlrpc.client.MAXINT:
            return None
        value = b"<value><int>%d</int></value>\n" % result
    elif kind is str:
        try:
            text = xmlrpc.client.escape(result).encode()
        except UnicodeEncodeError:
            return None
        value = b"<value><string>" + text + b"</string></value>\n"
    elif kind is float:
        value = b"<value><double>" + repr(result).encode() + b"</double></value>\n"
    elif kind is bool:
        value = (
            b"<value><boolean>1</boolean></value>\n"
            if result
            else (b"<value><boolean>0</boolean></value>\n")
        )
    else:
        return None
    return _ANSWER_HEAD + value + _ANSWER_TAIL


class XMLRPCDispatcher(SimpleXMLRPCDispatcher):
    """The stdlib dispatcher with a defused parser and clear faults.

    Args:
        max_depth: deepest element nesting accepted in a call.
        fast: read plain calls and write scalar answers without a parser
            (:func:`fast_loads_call`, :func:`fast_dumps_result`); same bytes either way.
    """

    def __init__(self, *, max_depth: int = DEFAULT_MAX_DEPTH, fast: bool = True) -> None:
        super().__init__(allow_none=False, encoding="utf-8", use_builtin_types=True)
        self.max_depth = max_depth
        self.fast = fast
        self.register_introspection_functions()
        self.register_multicall_functions()

    def register(self, name: str, function: Callable[..., Any]) -> None:
        """Make ``function`` callable as ``name`` (its docstring is its ``methodHelp``)."""
        self.register_function(function, name)

    def dispatch_bytes(self, data: bytes) -> bytes:
        """Answer the XML-RPC call ``data``: a ``methodResponse`` document (a result or a fault)."""
        plain = fast_loads_call(data) if self.fast else None
        params: tuple[Any, ...]
        method: str | None
        if plain is not None:
            params, method = plain
        else:
            try:
                params, method = safe_loads(data, max_depth=self.max_depth)
            except XMLRejected as exc:
                return self._fault(FAULT_PARSE, f"parse error: {exc}")
            except xmlrpc.client.Fault:
                return self._fault(FAULT_INVALID_REQUEST, "a fault is not a call")
        if not method:
            return self._fault(FAULT_INVALID_REQUEST, "not a methodCall")
        try:
            result = self._dispatch(method, params)
            if self.fast and (answer := fast_dumps_result(result)) is not None:
                return answer
            return xmlrpc.client.dumps((result,), methodresponse=True, encoding="utf-8").encode()
        except xmlrpc.client.Fault as fault:
            return self._fault(fault.faultCode, fault.faultString)
        except (TypeError, OverflowError, ValueError, RecursionError) as exc:
            # The result cannot be marshalled (an integer over 32 bits, None ...).
            return self._fault(FAULT_INTERNAL, f"the result cannot be sent: {_first_line(exc)}")

    def system_multicall(self, call_list: Any) -> list[Any]:
        """Call each ``{"methodName": ..., "params": [...]}`` of ``call_list``: each result in a
        one-item array, or its fault as a struct (multicalls do not nest)."""
        if not isinstance(call_list, list):
            raise RPCArgumentError("system.multicall takes an array of calls")
        results: list[Any] = []
        for call in call_list:
            name = call.get("methodName") if isinstance(call, dict) else None
            params = call.get("params", []) if isinstance(call, dict) else None
            if not isinstance(name, str) or not isinstance(params, list):
                results.append(
                    {
                        "faultCode": FAULT_INVALID_REQUEST,
                        "faultString": "a call is a struct with methodName and params",
                    }
                )
            elif name == "system.multicall":
                results.append(
                    {"faultCode": FAULT_INVALID_REQUEST, "faultString": "multicalls do not nest"}
                )
            else:
                try:
                    results.append([self._dispatch(name, params)])
                except xmlrpc.client.Fault as fault:
                    results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
        return results

    def _fault(self, code: int, message: str) -> bytes:
        fault = xmlrpc.client.Fault(code, message)
        return xmlrpc.client.dumps(fault, methodresponse=True, encoding="utf-8").encode()

    def _dispatch(self, method: str, params: Any) -> Any:
        """Call a registered function; every failure becomes a :class:`Fault` in our words."""
        function = self.funcs.get(method)
        if function is None:
            shown = method if len(method) <= 80 else method[:77] + "..."
            raise xmlrpc.client.Fault(FAULT_METHOD_NOT_FOUND, f"method {shown!r} is not supported")
        try:
            return function(*params)
        except xmlrpc.client.Fault:
            raise
        except RPCArgumentError as exc:
            raise xmlrpc.client.Fault(FAULT_INVALID_PARAMS, str(exc)) from None
        except TypeError as exc:
            if _is_call_error(exc, function):
                raise xmlrpc.client.Fault(
                    FAULT_INVALID_PARAMS, f"{method}: wrong number of arguments ({len(params)})"
                ) from None
            log.warning("xml-rpc %s failed: %s", method, _first_line(exc))
            raise xmlrpc.client.Fault(FAULT_INTERNAL, f"{method} failed") from None
        except Exception as exc:  # a bug of ours: one line in the log, a fault to the client
            log.warning("xml-rpc %s failed: %s", method, _first_line(exc))
            raise xmlrpc.client.Fault(FAULT_INTERNAL, f"{method} failed") from None


def _is_call_error(exc: TypeError, function: Callable[..., Any]) -> bool:
    """True when ``exc`` came from calling ``function`` with the wrong arguments."""
    tb = exc.__traceback__
    return tb is not None and tb.tb_next is None
