"""``wirelab http serve --tls`` and ``--cert/--key``: HTTPS from gunicorn, as a user runs it.

Checked with curl (``--cacert``) and with the standard library given an explicit context that
trusts only the lab CA (or the user's own CA); the usage errors exit 2 before anything starts.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import client_context


@contextmanager
def _serve(args: list[str], home: Path) -> Iterator[tuple[int, str]]:
    """Run ``wirelab http serve -p 0 ARGS``; yield its port and its listening line."""
    env = dict(os.environ, WIRELAB_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "http", "serve", "-p", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and "listening at" not in line:
            line = proc.stderr.readline()
        match = re.search(r"listening at 127\.0\.0\.1:(\d+) ", line)
        assert match, line
        yield int(match.group(1)), line
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, rest
    assert rest.strip().splitlines()[-1] == "stopped"


def _stdlib_get(port: int, cafile: Path, host: str = "127.0.0.1") -> tuple[int, bytes, str]:
    context = client_context(cafile=cafile)
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": "127.0.0.1"})
        response = conn.getresponse()
        version = conn.sock.version() if conn.sock is not None else ""  # type: ignore[union-attr]
        return response.status, response.read(), version or ""
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_tls_with_the_lab_ca(tmp_path: Path) -> None:
    with _serve(["--tls"], tmp_path) as (port, line):
        assert "HTTPS with the lab CA's certificate" in line
        cafile = tmp_path / "ca" / "ca.pem"
        done = subprocess.run(
            ["curl", "-sS", "--cacert", str(cafile), f"https://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", done.stdout.strip())
        # by the playground name too (the certificate names www.example.com), Host kept
        named = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                str(cafile),
                "--resolve",
                f"www.example.com:{port}:127.0.0.1",
                f"https://www.example.com:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert named.returncode == 0 and named.stdout == "404"  # the time app's Host rule
        status, body, version = _stdlib_get(port, cafile)
        assert status == 200 and body and version in ("TLSv1.2", "TLSv1.3")
        # a client that trusts another CA refuses it
        other = LabCA.load_or_create(tmp_path / "other")
        with pytest.raises(ssl.SSLCertVerificationError):
            _stdlib_get(port, other.cert_path)


def test_tls_with_the_users_certificate(tmp_path: Path) -> None:
    ca = LabCA.load_or_create(tmp_path / "own-ca")
    cert, key = ca.server_cert_for(["web.internal"], tmp_path / "own-ca")
    with _serve(["--cert", str(cert), "--key", str(key)], tmp_path / "home") as (port, line):
        assert f"HTTPS with {cert}" in line
        status, body, _ = _stdlib_get(port, ca.cert_path)
        assert status == 200 and body
    assert not (tmp_path / "home" / "ca").exists()  # the lab CA was not needed


@pytest.mark.parametrize(
    "args",
    [
        ["--tls", "--server", "waitress"],
        ["--tls", "--server", "wsgiref"],
        ["--tls", "--behind-nginx"],
        ["--tls", "-v"],
        ["--key", "k.pem"],
        ["--cert", "c.pem"],
        ["--worker-class", "eventlet"],
    ],
)
def test_tls_usage_errors_exit_2(args: list[str]) -> None:
    from typer.testing import CliRunner

    import wirelab.cli  # noqa: F401 - the CLI package first (it imports every topic's app)
    from wirelab.http.cli import app

    result = CliRunner().invoke(app, ["serve", "-p", "0", *args])
    assert result.exit_code == 2, result.output


def test_a_bad_certificate_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wirelab",
            "http",
            "serve",
            "-p",
            "0",
            "--cert",
            str(bad),
            "--key",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, WIRELAB_HOME=str(tmp_path)),
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "certificate" in done.stderr
