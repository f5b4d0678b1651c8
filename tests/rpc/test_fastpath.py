"""The XML-RPC fast path (decision 0183) gives exactly the defused parser's and the stdlib
marshaller's answers: Hypothesis properties on generated calls, mutated documents and results.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wirelab.rpc.server import xml_dispatcher
from wirelab.rpc.xmlcodec import (
    XMLRejected,
    XMLRPCDispatcher,
    fast_dumps_result,
    fast_loads_call,
    safe_loads,
)

scalars = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(),
    st.booleans(),
    st.floats(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
    max_leaves=6,
)
names = st.sampled_from(
    ["addtogether", "quadratic", "remote_repr", "system.listMethods", "nope", "a.b:c_1"]
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN and -0.0 told from 0.0 (``repr`` of each)."""
    return repr(a) == repr(b)


def _slow(data: bytes) -> tuple[tuple[Any, ...], str | None] | None:
    try:
        return safe_loads(data)
    except (XMLRejected, xmlrpc.client.Fault):
        return None


@settings(max_examples=250, deadline=None)
@given(st.lists(values, max_size=5), names)
def test_a_generated_call_reads_as_the_parser_reads_it(params: list[Any], name: str) -> None:
    try:
        data = xmlrpc.client.dumps(tuple(params), name).encode()
    except (OverflowError, TypeError, UnicodeEncodeError):
        return  # the stdlib cannot write it: no such call
    fast = fast_loads_call(data)
    if fast is not None:
        assert _same(fast, safe_loads(data))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=xmlrpc.client.MININT, max_value=xmlrpc.client.MAXINT),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(alphabet="abc XYZ019_-.,;:!?'\"\t\n", max_size=20),
        ),
        max_size=6,
    ),
    names,
)
def test_plain_calls_take_the_fast_path(params: list[Any], name: str) -> None:
    """Not vacuous: the calls clients send (scalars, ASCII text) are read without a parser."""
    data = xmlrpc.client.dumps(tuple(params), name).encode()
    fast = fast_loads_call(data)
    assert fast is not None
    assert _same(fast, safe_loads(data))
    assert _same(fast, xmlrpc.client.loads(data, use_builtin_types=True))


TEMPLATE = xmlrpc.client.dumps((1, "two", 3.5, True, "", -7), "addtogether").encode()
PIECES = [
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"&#65;",
    b"\r",
    b"\r\n",
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xc3\xbf",
    b"<!DOCTYPE x>",
    b"<!-- c -->",
    b"<![CDATA[x]]>",
    b"]]>",
    b"<int>",
    b"</int>",
    b"<i4>",
    b"</i4>",
    b"<value>",
    b"</value>",
    b"<param>",
    b"</param>",
    b"<params>",
    b"</params>",
    b"<string>",
    b"</string>",
    b"<double>",
    b"1e5",
    b".5",
    b"+",
    b"-",
    b"0",
    b"nan",
    b"x:",
    b"<?xml version='1.0' encoding='latin-1'?>",
    b"'",
    b'"',
    b"?>",
    b"\xef\xbb\xbf",
]


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(TEMPLATE)),
            st.integers(min_value=0, max_value=4),
            st.sampled_from(PIECES) | st.binary(max_size=3),
        ),
        min_size=1,
        max_size=3,
    )
)
@example([(0, 0, b"\r\n")])
@example([(TEMPLATE.index(b"two"), 0, b"\r")])
@example([(TEMPLATE.index(b"<int>1") + 5, 0, b" ")])
@example([(TEMPLATE.index(b"</int>") + 2, 3, b"i4")])
def test_a_mutated_document_is_either_declined_or_read_as_the_parser_reads_it(
    edits: list[tuple[int, int, bytes]],
) -> None:
    data = TEMPLATE
    for at, cut, piece in edits:
        at = min(at, len(data))
        data = data[:at] + piece + data[at + cut :]
    fast = fast_loads_call(data)
    if fast is not None:
        slow = _slow(data)
        assert slow is not None, data
        assert _same(fast, slow), data


@settings(max_examples=500, deadline=None)
@given(scalars)
def test_a_scalar_answer_is_the_stdlibs_bytes(result: Any) -> None:
    try:
        expected = xmlrpc.client.dumps((result,), methodresponse=True, encoding="utf-8").encode()
    except (OverflowError, UnicodeEncodeError):
        expected = None
    fast = fast_dumps_result(result)
    if fast is not None:
        assert fast == expected
    elif type(result) in (bool, float) or (
        type(result) is int and xmlrpc.client.MININT <= result <= xmlrpc.client.MAXINT
    ):
        raise AssertionError(f"{result!r} should take the fast path")


@pytest.mark.parametrize("result", [[1, 2], {"a": 1}, None, b"x", 2**31, "\ud800"])
def test_other_answers_are_left_to_the_stdlib(result: Any) -> None:
    assert fast_dumps_result(result) is None


FAST = xml_dispatcher()
SLOW = XMLRPCDispatcher(fast=False)
for _name, _function in FAST.funcs.items():
    if not _name.startswith("system."):
        SLOW.register(_name, _function)


@settings(max_examples=250, deadline=None)
@given(st.lists(values, max_size=4), names)
def test_the_dispatcher_answers_the_same_bytes_either_way(params: list[Any], name: str) -> None:
    """Results and faults alike: the fast dispatcher's answer is the parser path's."""
    try:
        data = xmlrpc.client.dumps(tuple(params), name).encode()
    except (OverflowError, TypeError, UnicodeEncodeError):
        return
    assert FAST.dispatch_bytes(data) == SLOW.dispatch_bytes(data)


@pytest.mark.parametrize(
    "body",
    [
        b"<?xml version='1.0'?><!DOCTYPE methodCall [<!ENTITY a 'x'>]><methodCall>"
        b"<methodName>addtogether</methodName><params><param><value>&a;</value></param>"
        b"</params></methodCall>",
        b"<methodCall><methodName>addtogether</methodName><params><param><value>"
        b"<string>&#65;</string></value></param></params></methodCall>",
        b"<methodCall><methodName>addtogether</methodName><params><param><value>"
        b"<int>99999999999999999999</int></value></param></params></methodCall>",
        b"<methodCall><methodName>addtogether</methodName><params><param><value><array><data>"
        b"</data></array></value></param></params></methodCall>",
    ],
)
def test_what_the_fast_path_declines(body: bytes) -> None:
    assert fast_loads_call(body) is None
    assert FAST.dispatch_bytes(body) == SLOW.dispatch_bytes(body)
