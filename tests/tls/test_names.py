"""Certificate name matching (RFC 6125): named cases and Hypothesis properties."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.tls.names import is_ip_address, match_name, normalize_dns_name

label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostname = st.lists(label, min_size=2, max_size=5).map(".".join)


@pytest.mark.parametrize(
    ("name", "entries", "expected"),
    [
        ("localhost", ["localhost"], "localhost"),
        ("WWW.Example.COM", ["www.example.com"], "www.example.com"),
        ("www.example.com.", ["www.example.com"], "www.example.com"),
        ("www.example.com", ["*.example.com"], "*.example.com"),
        ("a.b.example.com", ["*.example.com"], None),  # one label only
        ("example.com", ["*.example.com"], None),  # not the bare domain
        ("www.example.com", ["w*.example.com"], None),  # partial wildcards refused
        ("anything.com", ["*.com"], None),  # too broad (RFC 6125 §6.4.3)
        ("xn--bcher-kva.example.com", ["*.example.com"], None),  # no wildcard into an A-label
        ("bücher.example.com", ["xn--bcher-kva.example.com"], "xn--bcher-kva.example.com"),
        ("wrong.example.net", ["localhost", "www.example.com"], None),
        ("", ["localhost"], None),
    ],
)
def test_dns_names(name: str, entries: list[str], expected: str | None) -> None:
    assert match_name(name, entries) == expected


def test_addresses_match_only_address_entries() -> None:
    assert match_name("127.0.0.1", ["127.0.0.1"], []) is None  # a DNS entry never matches
    assert match_name("127.0.0.1", [], ["127.0.0.1"]) == "127.0.0.1"
    assert match_name("::1", [], ["0:0:0:0:0:0:0:1"]) == "0:0:0:0:0:0:0:1"
    assert match_name("[::1]", [], ["::1"]) == "::1"
    assert match_name("localhost", [], ["127.0.0.1"]) is None


@given(hostname)
def test_a_name_matches_itself_in_any_case(name: str) -> None:
    assert match_name(name.upper(), ["other.invalid", name]) == name


@given(label, hostname)
def test_a_wildcard_covers_exactly_one_label(first: str, parent: str) -> None:
    assert match_name(f"{first}.{parent}", [f"*.{parent}"]) == f"*.{parent}"
    assert match_name(f"{first}.{first}.{parent}", [f"*.{parent}"]) is None
    assert match_name(parent, [f"*.{parent}"]) is None


@given(st.ip_addresses())
def test_wildcards_and_names_never_match_addresses(address: ipaddress._BaseAddress) -> None:
    text = str(address)
    assert is_ip_address(text)
    assert match_name(text, ["*", "*.*", text]) is None
    assert match_name(text, [], [text]) == text


@given(st.text(max_size=40))
def test_any_text_gives_an_answer_not_an_exception(text: str) -> None:
    match_name(text, ["*.example.com", "localhost"], ["127.0.0.1"])
    normalize_dns_name(text)
