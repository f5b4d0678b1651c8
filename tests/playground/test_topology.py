"""The playground's topology as data, against the book's tables (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from wirelab.errors import ConfigError
from wirelab.playground.hostd import playground_zone
from wirelab.playground.netns import check_prefix, namespace, parse_loss
from wirelab.playground.topology import BRIDGES, HOSTS, LINKS, host, path_between

#: The book's section 3.2, host by host: every interface address.
BOOK = {
    "h1": {"eth1": ("192.168.1.11/24",)},
    "h2": {"eth1": ("192.168.1.12/24",)},
    "h3": {"eth1": ("192.168.1.13/24",)},
    "h4": {"eth1": ("192.168.1.14/24",)},
    "modemA": {"eth0": ("10.25.1.65/16",), "eth1": ("192.168.1.1/24",)},
    "modemB": {"eth0": ("10.25.1.66/16",), "eth1": ("192.168.1.1/24",)},
    "isp": {"eth0": ("10.25.1.1/32",), "eth1": ("10.25.1.1/32",), "eth2": ("10.25.1.1/32",)},
    "backbone": {"eth0": ("10.1.1.1/32",), "eth1": ("10.1.1.1/32",)},
    "example": {"eth0": ("10.130.1.1/32",), "eth1": ("10.130.1.1/24",)},
    "ftp": {"eth0": ("10.130.1.2/24",)},
    "mail": {"eth0": ("10.130.1.3/24",)},
    "www": {"eth0": ("10.130.1.4/24",)},
}


def test_twelve_hosts_with_the_books_addresses() -> None:
    assert {h.name: h.addresses for h in HOSTS} == BOOK


def test_routers_forward_and_workstations_do_not() -> None:
    routers = {h.name for h in HOSTS if h.forwarding}
    assert routers == {"modemA", "modemB", "isp", "backbone", "example"}


def test_only_the_modems_masquerade_out_of_their_isp_side() -> None:
    assert {h.name: h.masquerade for h in HOSTS if h.masquerade} == {
        "modemA": "eth0",
        "modemB": "eth0",
    }


def _neighbours(name: str, device: str) -> set[str]:
    """The hosts reachable in one hop from ``name``'s ``device`` (through its LAN, if any)."""
    for ln in LINKS:
        for mine, other in ((ln.a, ln.b), (ln.b, ln.a)):
            if (mine.node, mine.device) != (name, device):
                continue
            if other.node not in BRIDGES:
                return {other.node}
            return {x.a.node for x in LINKS if x.b.node == other.node} - {name}
    return set()


def test_every_gateway_is_a_neighbour_address() -> None:
    """A route's gateway is an address of a host one hop away through that interface."""
    checked = 0
    for h in HOSTS:
        for route in h.routes:
            if route.via is None:
                continue
            addresses = {
                a.split("/")[0]
                for peer in _neighbours(h.name, route.device)
                for values in host(peer).addresses.values()
                for a in values
            }
            assert route.via in addresses, (h.name, route)
            checked += 1
    assert checked >= 11


def test_interface_names_fit_linux_and_every_link_end_is_used_once() -> None:
    ends = [(p.node, p.device) for ln in LINKS for p in (ln.a, ln.b)]
    assert len(ends) == len(set(ends))
    assert all(len(device) <= 15 for _, device in ends)
    for h in HOSTS:
        assert set(h.addresses) <= {d for n, d in ends if n == h.name}


def test_path_between_neighbours() -> None:
    assert [(p.node, p.device) for p in path_between("modemA", "isp")] == [
        ("modemA", "eth0"),
        ("isp", "eth1"),
    ]
    assert [(p.node, p.device) for p in path_between("h1", "modemA")] == [
        ("h1", "eth1"),
        ("homeA", "h1"),
    ]
    assert path_between("h1", "h4") == []
    assert path_between("h1", "www") == []


def test_prefixes_and_namespace_names() -> None:
    assert namespace("wl42", "exampleCOM") == "wl42-exampleCOM"
    for bad in ("", "x", "wl", "wl-1", "WL1", "wl12345678901", "wl1;rm"):
        with pytest.raises(ConfigError):
            check_prefix(bad)


@pytest.mark.parametrize(
    ("text", "permille"), [("10%", 100), ("2.5", 25), ("0%", 0), ("100%", 1000)]
)
def test_parse_loss(text: str, permille: int) -> None:
    assert parse_loss(text) == permille


@pytest.mark.parametrize("text", ["-1%", "101%", "lots", ""])
def test_parse_loss_refuses_nonsense(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_loss(text)


def test_zone_has_every_host_and_the_books_mail_records() -> None:
    zone = playground_zone()
    for h in HOSTS:
        name = h.fqdn if h.fqdn.endswith("example.com") else f"{h.fqdn}.example.com"
        [record] = zone.lookup(name.lower(), "A")
        assert ipaddress.ip_address(record.value) == ipaddress.ip_address(h.address)
    assert [r.value for r in zone.lookup("example.com", "MX")] == [(10, "mail.example.com")]
    assert [r.value for r in zone.lookup("smtp.example.com", "CNAME")] == ["mail.example.com"]
