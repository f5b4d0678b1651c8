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

from tests.conftest import run_wirelab
from wirelab.net.ca import LabCA
from wirelab.tls.client import fetch, make_client_context


def test_connect_to_the_lab_greeting(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("tls", "connect", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Simple is better than complex.\n"
    assert "certificate verified for localhost" in done.stderr
    assert "close_notify" not in done.stderr  # our server ends cleanly


def test_connect_with_host_and_no_port_takes_the_labs_port(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("tls", "connect", "localhost", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["servername"] == "localhost" and doc["close_notify"] is True
    assert doc["text"] == "Simple is better than complex."


def test_connect_json_with_the_lab_client_certificate(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab(
        "tls", "connect", "--lab", "tls.clientauth", "--lab-cert", "--json", env=wirelab_env
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["text"] == "Hello, brandon. Simple is better than complex."
    assert doc["version"] in ("TLSv1.2", "TLSv1.3")


def test_inspect_json_on_a_broken_endpoint_exits_1(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("tls", "inspect", "--lab", "tls.wronghost", "--json", env=wirelab_env)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["problem"] == "wrong-host"
    assert doc["chain"][0]["dns_names"] == ["wrong.example.net"]


def test_inspect_versions_and_insecure_warning(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab(
        "tls", "inspect", "--lab", "tls.expired", "--versions", "--insecure", env=wirelab_env
    )
    assert done.returncode == 1
    assert "warning: --insecure" in done.stderr
    assert "verdict:  expired: the certificate ran out on" in done.stdout
    assert "(unverified session, --insecure)" in done.stdout
    assert "TLSv1.3  accepted" in done.stdout


def test_features_json(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("tls", "features", "--json", env=wirelab_env)
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
        (["inspect", "127.0.0.1", "-p", "nosuchservice"], "unknown service name 'nosuchservice'"),
        (["inspect", "no-such-host.invalid", "-p", "443"], "name service failure"),
        (["inspect", "--lab", "tls.clientauth"], "peer requires a client certificate (give --cert"),
        (["connect", "--cafile", "/nonexistent/ca.pem"], "cannot load the CA file"),
        (["connect", "--ciphers", "ALL:@SECLEVEL=0"], "lowers the OpenSSL security level to 0"),
        (["connect", "--ciphers", "NOPE"], "selects no cipher suite"),
    ],
)
def test_bad_input_is_one_line(wirelab_env: dict[str, str], args: list[str], message: str) -> None:
    done = run_wirelab("tls", *args, env=wirelab_env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: "), done.stderr
    assert message in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "--starttls", "gopher"],
        ["connect", "127.0.0.1", "-p", "1", "--lab", "tls.greeting"],
        ["connect", "--min-version", "1.1"],
        ["connect", "--max-version", "1.1"],
        ["inspect", "--min-version", "1.3", "--max-version", "1.2"],
        ["connect", "-t", "inf"],  # was an OverflowError traceback
        ["connect", "-t", "0"],
        ["connect", "127.0.0.1", "-p", "70000"],
        ["connect", "127.0.0.1", "70000"],  # the old HOST PORT form: an extra argument
        ["inspect", "127.0.0.1", "-p", "-1"],
        ["serve", "-p", "70000"],  # was exit 1
        ["serve", ""],  # was a silent bind to every interface
        ["serve", "--handshake-timeout", "inf"],
        ["connect", ""],
        ["connect", "--key", "k.pem"],
        ["inspect", "--cert", "c.pem", "--lab-cert"],
    ],
)
def test_usage_errors_exit_2(wirelab_env: dict[str, str], args: list[str]) -> None:
    done = run_wirelab("tls", *args, env=wirelab_env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_tls13_only_with_a_cipher_string(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab(
        "tls", "connect", "--min-version", "1.3", "--ciphers", "ECDHE+AESGCM", env=wirelab_env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("TLSv1.3 ")


@pytest.mark.parametrize("command", ["connect", "inspect"])
def test_pinned_tls12_lets_the_cipher_string_choose(
    wirelab_env: dict[str, str], command: str
) -> None:
    """F28: between our own client and server, --ciphers decides once TLS 1.2 is pinned."""
    chosen = []
    for ciphers in ("ECDHE+CHACHA20", "ECDHE+AESGCM+AES128"):
        done = run_wirelab(
            "tls", command, "--min-version", "1.2", "--max-version", "1.2",
            "--ciphers", ciphers, "--json", env=wirelab_env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        version, cipher = (
            (doc["version"], doc["cipher"])
            if command == "connect"
            else (doc["session"]["version"], doc["session"]["cipher"])
        )
        assert version == "TLSv1.2"
        chosen.append(cipher)
    assert "CHACHA20" in chosen[0] and "AES128-GCM" in chosen[1], chosen


def test_max_version_caps_the_session(wirelab_env: dict[str, str]) -> None:
    done = run_wirelab("tls", "inspect", "--max-version", "1.2", "--json", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session"]["version"] == "TLSv1.2"


def test_inspect_presents_a_client_certificate(wirelab_env: dict[str, str]) -> None:
    """F27: the inspector takes --lab-cert as connect does, and says the server asked."""
    done = run_wirelab("tls", "inspect", "--lab", "tls.clientauth", "--lab-cert", env=wirelab_env)
    assert done.returncode == 0, done.stderr
    assert "client:   requested; ours was accepted" in done.stdout
    done = run_wirelab("tls", "inspect", "--lab", "tls.greeting", "--json", env=wirelab_env)
    assert json.loads(done.stdout)["client_certificate"] == "not requested"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_inspect_says_a_server_requires_a_client_certificate(
    wirelab_env: dict[str, str], version: str
) -> None:
    done = run_wirelab(
        "tls", "inspect", "--lab", "tls.clientauth",
        "--min-version", version, "--max-version", version, env=wirelab_env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "peer requires a client certificate (give --cert and --key, or --lab-cert)"
    ), done.stderr


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
        while "listening at" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stderr.readline()
        assert "listening at 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(" ")[0])
        ca = LabCA.load_or_create(tmp_path / "ca")
        ctx = make_client_context(cafile=ca.cert_path)
        got = fetch("127.0.0.1", port, context=ctx, servername="www.example.com")
        assert got.data == b"Simple is better than complex."
        assert got.close_notify
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
