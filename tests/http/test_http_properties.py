"""Hypothesis properties of the small parsers we own: Host values and response framing."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wirelab.http.apps import host_name
from wirelab.http.client import framing_of

names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
ports = st.integers(min_value=0, max_value=65535)


# from_regex draws are slow when the shared machine is busy (one took 2.3 s): not a failure.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(names, ports)
def test_name_with_port(name: str, port: int) -> None:
    assert host_name(f"{name}:{port}") == name
    assert host_name(name) == name


@given(st.ip_addresses(v=6), ports)
def test_ipv6_literal(address: ipaddress.IPv6Address, port: int) -> None:
    assert host_name(f"[{address}]:{port}") == str(address)
    assert host_name(f"[{address}]") == str(address)


@given(st.ip_addresses(v=4), ports)
def test_ipv4_with_port(address: ipaddress.IPv4Address, port: int) -> None:
    assert host_name(f"{address}:{port}") == str(address)


@given(st.text(max_size=40))
def test_host_name_never_fails(value: str) -> None:
    assert isinstance(host_name(value), str)


@given(
    st.sampled_from(["GET", "HEAD", "POST"]),
    st.integers(min_value=100, max_value=599),
    st.booleans(),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
)
def test_framing_follows_rfc9112(
    method: str, status: int, chunked: bool, length: int | None
) -> None:
    headers = []
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    if length is not None:
        headers.append(("Content-Length", str(length)))
    found = framing_of(method, status, headers)
    if method == "HEAD" or status in (204, 304) or status < 200:
        assert found == "no body"
    elif chunked:
        assert found == "chunked"  # Transfer-Encoding wins over Content-Length
    elif length is not None:
        assert found == f"Content-Length: {length}"
    else:
        assert found == "until the server closed the connection"
