"""``wirelab dns ...`` as subprocesses against the session lab."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.conftest import run_wirelab


def run(env: dict[str, str] | None, *args: str) -> subprocess.CompletedProcess[str]:
    return run_wirelab("dns", *args, env=env)


@pytest.fixture
def env(wirelab_env: dict[str, str], lab_dns: object) -> dict[str, str]:
    return wirelab_env


def test_mx(env: dict[str, str]) -> None:
    done = run(env, "mx", "example.com")
    assert done.returncode == 0, done.stderr
    assert "10  mail.example.com  127.0.0.1, ::1" in done.stdout
    assert "asking the DNS server 127.0.0.1:" in done.stderr
    alias = run(env, "mx", "www.example.com").stdout
    assert "smtp.example.com (alias of mail.example.com)" in alias
    assert "accepts no mail" in run(env, "mx", "nomail.example.com").stdout
    assert "no MX record" in run(env, "mx", "ftp.example.com").stdout


def test_mx_json(env: dict[str, str]) -> None:
    doc = json.loads(run(env, "mx", "example.com", "--json").stdout)
    assert doc["hosts"][0]["exchange"] == "mail.example.com" and not doc["null_mx"]


def test_nxdomain_exits_1_with_one_line(env: dict[str, str]) -> None:
    done = run(env, "mx", "nosuch.example.com")
    assert done.returncode == 1
    assert "wirelab: error: no such domain: nosuch.example.com (NXDOMAIN)" in done.stderr
    assert "Traceback" not in done.stderr


def test_lookup(env: dict[str, str]) -> None:
    out = run(env, "lookup", "example.com").stdout
    for line in (
        "example.com A 127.0.0.1",
        "example.com MX 10 mail.example.com.",
        "example.com NS backbone.example.com.",
    ):
        assert line in out
    cname = run(env, "lookup", "smtp.example.com", "--type", "CNAME").stdout
    assert "smtp.example.com CNAME mail.example.com." in cname
    assert "has no MX record" in run(env, "lookup", "ftp.example.com", "--type", "MX").stdout
    assert run(env, "lookup", "example.com", "--type", "BOGUS").returncode == 2  # usage


@pytest.mark.slow
def test_addrinfo_ping_name(env: dict[str, str], lab_dns: object) -> None:
    info = run(env, "addrinfo", "smtp.example.com", "smtp")
    assert "port 25: canonical name mail.example.com" in info.stdout
    assert "AF_INET" in info.stdout and "AF_INET6" in info.stdout
    port = lab_dns.endpoint("tcp").port  # type: ignore[attr-defined]
    ok = run(env, "ping", "backbone.example.com", str(port))
    assert ok.returncode == 0, ok.stderr
    assert f"Success: host backbone.example.com is listening on port {port}" in ok.stdout
    default = run(env, "ping", "backbone.example.com")  # the lab's own port for that host
    assert default.returncode == 0 and "Success" in default.stdout
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
        failed = run(env, "ping", "mail.example.com", str(closed))
    assert failed.returncode == 1 and "network failure" in failed.stderr
    name_failure = run(env, "ping", "nosuch.example.com", "80")
    assert name_failure.returncode == 1 and "NXDOMAIN" in name_failure.stderr
    assert (
        "The IP address of www.example.com is 127.0.0.1"
        in run(env, "name", "www.example.com").stdout
    )
    doc = json.loads(run(env, "name", "www.example.com", "--json").stdout)
    assert doc["address"] == "127.0.0.1" and doc["via"].startswith("DNS server 127.0.0.1")


def test_silent_server_gives_a_clear_timeout(env: dict[str, str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        done = run(env, "lookup", "example.com", "--type", "A", "--server", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert "did not answer" in done.stderr and "retried with backoff" in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("ping", "localhost", "-t", "inf"), "inf is not a number of seconds"),
        (("ping", "localhost", "-t", "0"), "not a number of seconds above zero"),
        (("ping", "localhost", "70000"), "port 70000 is out of range"),
        (("addrinfo", "localhost", "70000"), "port 70000 is out of range"),
        (("addrinfo", "localhost", "--", "-1"), "port -1 is out of range"),
        (("name", ""), "the name is empty"),
        (("mx", " "), "the name is empty"),
        (("lookup", ""), "the name is empty"),
        (("lookup", "example.com", "--server", "127.0.0.1:70000"), "port must be 1-65535"),
        (("lookup", "example.com", "-s", ":53"), "no host"),
        (("lookup", "example.com", "-t", "MX"), "No such option: -t"),  # -t is --timeout
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_usage_errors_exit_2_without_a_traceback(args: tuple[str, ...], says: str) -> None:
    """Issue 11 item 7: these were a traceback (-t inf), exit 1 (ports) or "0.0.0.0" (name)."""
    done = run(None, *args)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert says in done.stderr
    assert "Traceback" not in done.stderr and "The IP address" not in done.stdout
