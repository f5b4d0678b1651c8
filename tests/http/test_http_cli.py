"""``wirelab http ...`` as a user runs it, against the session lab's web host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_wirelab

from .conftest import Www


@pytest.fixture
def env(wirelab_env: dict[str, str], www: Www) -> dict[str, str]:
    return wirelab_env


def test_get_follows_and_reports(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "get", f"{www.https}/status/301", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["url"] == f"{www.https}/get"
    assert "redirect: 301 MOVED PERMANENTLY" in done.stderr
    assert "redirect: 302 FOUND" in done.stderr
    assert "3 requests over 1 connection" in done.stderr


def test_get_no_follow(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "get", "--no-follow", f"{www.http}/status/303", env=env)
    assert done.returncode == 0, done.stderr
    assert "HTTP/1.1 303 SEE OTHER" in done.stderr and "Location: /redirect/1" in done.stderr


def test_get_status_error_exits_1_with_headers(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "get", f"{www.https}/status/404", env=env)
    assert done.returncode == 1
    assert done.stdout.startswith("HTTP/1.1 404 NOT FOUND\n") and "Server: gunicorn" in done.stdout
    assert done.stderr.strip().endswith(
        f"404 Client Error: NOT FOUND for url: {www.https}/status/404"
    )
    assert "Traceback" not in done.stderr


def test_get_verbose_shows_framing(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "get", "-v", f"{www.http}/stream/2", env=env)
    assert done.returncode == 0, done.stderr
    assert "> GET /stream/2 HTTP/1.1" in done.stderr
    assert "< Transfer-Encoding: chunked" in done.stderr
    assert "delimited by chunked" in done.stderr


def test_get_auth_cookies_and_reuse(env: dict[str, str], www: Www) -> None:
    done = run_wirelab(
        "http",
        "get",
        "-u",
        "brandon",
        "--password",
        "atigdngnatwwal",
        "-n",
        "2",
        "--json",
        f"{www.https}/basic-auth/brandon/atigdngnatwwal",
        f"{www.https}/cookies/set?session-id=7",
        f"{www.https}/cookies",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["connections_opened"] == 1
    bodies = [json.loads(x["body"]) for x in report["exchanges"]]
    assert bodies[0] == {"authenticated": True, "user": "brandon"}
    assert bodies[2] == {"cookies": {"session-id": "7"}}
    assert len(report["exchanges"]) == 6


def test_headers_compares(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "headers", "--json", f"{www.https}/headers", env=env)
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert dict(table["urllib"])["User-Agent"].startswith("Python-urllib/")
    assert dict(table["requests"])["User-Agent"].startswith("python-requests/")


def test_raw_prints_the_bytes(env: dict[str, str], www: Www) -> None:
    done = run_wirelab("http", "raw", f"{www.https}/ip", env=env)
    assert done.returncode == 0, done.stderr
    # (text mode turns the wire's CRLF into newlines; test_http_raw checks the bytes)
    assert done.stdout.startswith(f"GET /ip HTTP/1.1\nHost: www.example.com:{www.https_port}\n")
    assert "\n\nHTTP/1.1 200 OK\n" in done.stdout
    assert "--- sent" in done.stderr and "delimited by Content-Length: " in done.stderr


def test_untrusted_ca_is_one_line(env: dict[str, str], www: Www, tmp_path: Path) -> None:
    from wirelab.net.ca import LabCA

    other = LabCA.load_or_create(tmp_path / "other")
    done = run_wirelab("http", "get", "--cacert", str(other.cert_path), f"{www.https}/get", env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "certificate verify failed" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["get"],
        ["get", "-t", "0", "http://x/"],
        ["raw"],
        ["serve", "--server", "nginx"],
        ["serve", "-w", "0"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    """Parsed in-process (a usage error never reaches the network); exit 2 end to end is
    the grammar test's."""
    from typer.testing import CliRunner

    import wirelab.cli  # noqa: F401 - the CLI package first (it imports every topic's app)
    from wirelab.http.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output


def test_bad_url_exits_1() -> None:
    done = run_wirelab("http", "get", "gopher://x/")
    assert done.returncode == 1 and "bad URL" in done.stderr and "Traceback" not in done.stderr
