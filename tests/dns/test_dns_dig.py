"""Interop: dig (BIND's client) against the lab DNS server agrees with the zone."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

DIG = shutil.which("dig")
pytestmark = pytest.mark.skipif(
    DIG is None, reason="dig is not installed (make setup installs bind9-dnsutils as root)"
)


def dig(srv: Any, *args: str) -> str:
    done = subprocess.run(
        [DIG or "dig", f"@{srv.host}", "-p", str(srv.port), "+time=2", "+tries=2", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_dig_short_answers(dns_server: Any) -> None:
    assert dig(dns_server, "+short", "mail.example.com").split() == ["127.0.0.1"]
    assert dig(dns_server, "+short", "mail.example.com", "AAAA").split() == ["::1"]
    assert dig(dns_server, "+short", "example.com", "MX").strip() == "10 mail.example.com."
    assert dig(dns_server, "+short", "smtp.example.com").split() == [
        "mail.example.com.",
        "127.0.0.1",
    ]


def test_dig_sees_status_and_flags(dns_server: Any) -> None:
    out = dig(dns_server, "nosuch.example.com")
    assert "status: NXDOMAIN" in out and " aa" in out and "SOA" in out
    assert "status: REFUSED" in dig(dns_server, "python.org")
    nodata = dig(dns_server, "ftp.example.com", "MX")
    assert "status: NOERROR" in nodata and "ANSWER: 0" in nodata


def test_dig_over_udp_only_sees_truncation_then_tcp_gets_everything(dns_server: Any) -> None:
    udp = dig(dns_server, "+ignore", "+noedns", "many.example.com", "TXT")
    assert " tc" in udp and "ANSWER: 0" in udp
    tcp = dig(dns_server, "+tcp", "many.example.com", "TXT")
    assert "ANSWER: 40" in tcp
    retried = dig(dns_server, "+noedns", "many.example.com", "TXT")  # dig retries over TCP itself
    assert "ANSWER: 40" in retried


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_any_gets_the_rfc8482_hinfo_not_every_record(dns_server: Any, transport: str) -> None:
    out = dig(dns_server, transport, "example.com", "ANY")
    assert "status: NOERROR" in out and "ANSWER: 1," in out
    assert 'HINFO\t"RFC8482" ""' in out
    assert "MSG SIZE  rcvd: " in out
    size = int(out.split("MSG SIZE  rcvd: ")[1].split()[0])
    assert size < 100  # dig adds EDNS (a 52-byte query): the answer stays under 2x
