"""Our dnspython-based clients against the lab DNS server, and against a silent server."""

from __future__ import annotations

import random
import socket
import time
from typing import Any

import pytest

from wirelab.dns.client import (
    NoSuchDomain,
    Server,
    ServerFailure,
    lookup,
    lookup_all,
    mail_routes,
    make_resolver,
    parse_server,
    resolve_host,
)
from wirelab.dns.names import addrinfo, host_address, ping
from wirelab.dns.zone import Record, lab_zone
from wirelab.errors import ConfigError, NameResolutionError, Timeout


@pytest.fixture(scope="module")
def resolver(dns_server: Any) -> Any:
    return make_resolver(Server(dns_server.host, dns_server.port))


def test_lookup_each_type(resolver: Any) -> None:
    assert lookup("mail.example.com", "A", resolver=resolver).records == ("127.0.0.1",)
    assert lookup("example.com", "mx", resolver=resolver).records == ("10 mail.example.com.",)
    cname = lookup("smtp.example.com", "CNAME", resolver=resolver)
    assert cname.records == ("mail.example.com.",)
    follow = lookup("smtp.example.com", "A", resolver=resolver)
    assert follow.canonical == "mail.example.com" and follow.records == ("127.0.0.1",)


def test_lookup_all_tolerates_empty_answers(resolver: Any) -> None:
    results = {r.type: r.records for r in lookup_all("ftp.example.com", resolver=resolver)}
    assert results["A"] == ("127.0.0.1",) and results["AAAA"] == ("::1",)
    assert results["MX"] == () and results["CNAME"] == () and results["NS"] == ()


def test_nxdomain_is_reported_clearly(resolver: Any) -> None:
    with pytest.raises(NoSuchDomain, match=r"no such domain: nosuch\.example\.com"):
        lookup("nosuch.example.com", "A", resolver=resolver)
    with pytest.raises(NoSuchDomain):
        mail_routes("nosuch.example.com", resolver=resolver)


def test_outside_the_zone_is_a_server_failure(resolver: Any) -> None:
    with pytest.raises(ServerFailure, match="refused"):
        lookup("python.org", "A", resolver=resolver)


def test_unknown_type_is_a_config_error(resolver: Any) -> None:
    with pytest.raises(ConfigError):
        lookup("example.com", "BOGUS", resolver=resolver)


def test_mail_routes_by_preference(resolver: Any) -> None:
    routes = mail_routes("example.com", resolver=resolver)
    assert not routes.implicit and not routes.null_mx
    assert [(h.preference, h.exchange) for h in routes.hosts] == [(10, "mail.example.com")]
    assert set(routes.hosts[0].addresses) == {"127.0.0.1", "::1"}


def test_mx_target_that_is_an_alias_is_followed(resolver: Any) -> None:
    routes = mail_routes("www.example.com", resolver=resolver)
    host = routes.hosts[0]
    assert host.exchange == "smtp.example.com" and host.canonical == "mail.example.com"
    assert "127.0.0.1" in host.addresses


def test_no_mx_falls_back_to_the_domain_address(resolver: Any) -> None:
    routes = mail_routes("ftp.example.com", resolver=resolver)
    assert routes.implicit
    assert routes.hosts[0].exchange == "ftp.example.com"
    assert "127.0.0.1" in routes.hosts[0].addresses


def test_null_mx_means_no_mail(resolver: Any) -> None:
    routes = mail_routes("nomail.example.com", resolver=resolver)
    assert routes.null_mx and routes.hosts == ()


def test_equal_preferences_are_shuffled_lower_first(start_dns: Any) -> None:
    zone = lab_zone([])
    for host, pref in (("mx1", 20), ("mx2", 20), ("mx3", 20), ("backup", 30)):
        zone.add(Record("shuffle.example.com", "MX", (pref, f"{host}.example.com")))
        zone.add(Record(f"{host}.example.com", "A", "127.0.0.1"))
    zone.add(Record("shuffle.example.com", "MX", (5, "gone.example.com")))
    srv = start_dns(zone)
    res = make_resolver(Server(srv.host, srv.port))
    orders = set()
    for seed in range(12):
        routes = mail_routes("shuffle.example.com", resolver=res, rng=random.Random(seed))
        names = [h.exchange for h in routes.hosts]
        assert names[0] == "gone.example.com" and routes.hosts[0].error  # no address: reported
        assert names[-1] == "backup.example.com"
        orders.add(tuple(names[1:4]))
    assert len(orders) > 1, "equal-preference hosts were never shuffled"


def test_resolve_host_gives_both_families(resolver: Any) -> None:
    found = resolve_host("smtp.example.com", resolver=resolver)
    assert found.canonical == "mail.example.com"
    assert found.addresses == ("127.0.0.1", "::1")


def test_silent_server_times_out_after_retries() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        res = make_resolver(Server("127.0.0.1", port), timeout=0.2, lifetime=1.0)
        began = time.monotonic()
        with pytest.raises(Timeout, match=f"127.0.0.1 port {port} did not answer"):
            lookup("example.com", "A", resolver=res)
        assert time.monotonic() - began < 5
        silent.settimeout(0.1)
        received = 0
        while True:
            try:
                silent.recv(512)
            except TimeoutError:
                break
            received += 1
        assert received >= 2, "the query was not retried"


def test_parse_server() -> None:
    assert parse_server("127.0.0.1:10053") == Server("127.0.0.1", 10053)
    assert parse_server("[::1]:10053") == Server("::1", 10053)
    assert parse_server("::1") == Server("::1", 53)
    assert parse_server("127.0.0.1") == Server("127.0.0.1", 53)
    assert str(Server("::1", 53)) == "[::1]:53"
    for bad in ("127.0.0.1:0", "127.0.0.1:99999", "[::1]x", ":53", "127.0.0.1:abc"):
        with pytest.raises(ConfigError):
            parse_server(bad)


def test_addrinfo_through_the_lab_dns(resolver: Any) -> None:
    report = addrinfo("smtp.example.com", "smtp", resolver=resolver)
    assert report.canonical == "mail.example.com"
    assert report.port == 25
    assert {i.host for i in report.infos} == {"127.0.0.1", "::1"}
    assert "DNS server" in report.via


def test_addrinfo_outside_the_zone_falls_back_to_the_system(resolver: Any) -> None:
    report = addrinfo("localhost", 80, resolver=resolver)
    assert "system" in report.via
    assert report.infos


def test_addrinfo_numeric_and_unknown_service(resolver: Any) -> None:
    assert addrinfo("127.0.0.1", "1060", resolver=resolver).infos[0].host == "127.0.0.1"
    with pytest.raises(ConfigError):
        addrinfo("127.0.0.1", "no-such-service", resolver=resolver)


def test_ping_tries_every_address_until_one_listens(resolver: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        report = ping("mail.example.com", port, resolver=resolver, timeout=2)
    assert report.ok
    assert report.attempts[-1].ok and report.attempts[-1].address == f"127.0.0.1:{port}"


def test_ping_network_failure_is_not_a_name_failure(resolver: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        report = ping("mail.example.com", port, resolver=resolver, timeout=2)
    assert not report.ok
    assert len(report.attempts) == 2  # ::1 and 127.0.0.1, both tried
    assert all("network failure" in (a.error or "") for a in report.attempts)
    with pytest.raises(NameResolutionError, match="no such domain"):
        ping("nosuch.example.com", port, resolver=resolver)


def test_host_address(resolver: Any) -> None:
    assert host_address("www.example.com", resolver=resolver)[0] == "127.0.0.1"
    assert host_address("127.0.0.1", resolver=resolver)[0] == "127.0.0.1"
    assert host_address("localhost", resolver=resolver)[1].startswith("the system")
    with pytest.raises(NameResolutionError):
        host_address("nosuch.example.com", resolver=resolver)
