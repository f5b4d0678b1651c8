"""``wirelab tls ...`` commands, as subprocesses against the session lab."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wirelab.net.ca import LabCA
from wirelab.tls.client import fetch, make_client_context


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirelab", "tls", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_connect_to_the_lab_greeting(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "connect")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Simple is better than complex.\n"
    assert "certificate verified for localhost" in done.stderr


def test_connect_json_with_the_lab_client_certificate(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "connect", "--lab", "tls.clientauth", "--lab-cert", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["text"] == "Hello, brandon. Simple is better than complex.\n"
    assert doc["version"] in ("TLSv1.2", "TLSv1.3")


def test_inspect_json_on_a_broken_endpoint_exits_1(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "inspect", "--lab", "tls.wronghost", "--json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["problem"] == "wrong-host"
    assert doc["chain"][0]["dns_names"] == ["wrong.example.net"]


def test_inspect_versions_and_insecure_warning(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "inspect", "--lab", "tls.expired", "--versions", "--insecure")
    assert done.returncode == 1
    assert "warning: --insecure" in done.stderr
    assert "verdict:  expired: the certificate ran out on" in done.stdout
    assert "(unverified session, --insecure)" in done.stdout
    assert "TLSv1.3  accepted" in done.stdout


def test_features_json(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "features", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["has"]["TLSv1_3"] is True
    assert doc["versions"]["TLSv1.3"]["default_context"] is True
    assert "OP_NO_COMPRESSION" in doc["constants"]["OP"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["connect", "--lab", "tls.clientauth"], "peer requires a client certificate (give --cert"),
        (["connect", "--lab", "tls.selfsigned"], "self-signed certificate"),
        (["connect", "--lab", "tls.nosuch"], "the lab has no endpoint 'tls.nosuch'"),
        (["inspect", "127.0.0.1", "nosuchservice"], "unknown service name 'nosuchservice'"),
        (["inspect", "no-such-host.invalid", "443"], "name service failure"),
        (["connect", "--cafile", "/nonexistent/ca.pem"], "cannot load the CA file"),
        (["connect", "--ciphers", "ALL:@SECLEVEL=0"], "lowers the OpenSSL security level to 0"),
        (["connect", "--ciphers", "NOPE"], "selects no cipher suite"),
    ],
)
def test_bad_input_is_one_line(wirelab_env: dict[str, str], args: list[str], message: str) -> None:
    done = run(wirelab_env, *args)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: "), done.stderr
    assert message in lines[0]


def test_usage_errors_exit_2(wirelab_env: dict[str, str]) -> None:
    assert run(wirelab_env, "inspect", "--starttls", "gopher").returncode == 2
    assert run(wirelab_env, "connect", "127.0.0.1", "1", "--lab", "tls.greeting").returncode == 2
    assert run(wirelab_env, "connect", "--min-version", "1.1").returncode == 2


def test_tls13_only_with_a_cipher_string(wirelab_env: dict[str, str]) -> None:
    done = run(wirelab_env, "connect", "--min-version", "1.3", "--ciphers", "ECDHE+AESGCM")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("TLSv1.3 ")


def test_serve_greets_a_verified_client(tmp_path: Path) -> None:
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "tls", "serve", "-p", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 20
        while "listening at TLS" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stderr.readline()
        assert "listening at TLS 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        ca = LabCA.load_or_create(tmp_path / "ca")
        ctx = make_client_context(cafile=ca.cert_path)
        got = fetch("127.0.0.1", port, context=ctx, servername="www.example.com")
        assert got.text == "Simple is better than complex.\n"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            tail = proc.stderr.read()
            proc.stderr.close()
            assert "stopped after greeting 1 clients" in tail
