"""The inspector against servers a secure client shares no TLS version or cipher with.

Real loopback servers built straight from :mod:`ssl` (wirelab's own builders refuse to make
them): one that speaks only TLS 1.0, one that speaks only TLS 1.2 with a SHA-1 cipher suite
our client never offers, and one that speaks only TLS 1.3.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from wirelab.errors import TLSError
from wirelab.net.ca import LabCA
from wirelab.tls.inspect import VersionResult, inspect, probe_versions

from .tls_helpers import tls_acceptor

OLD_TLS_LINE = (
    "old TLS only: the server offers only TLSv1.0, which RFC 8996 deprecates; "
    "a secure client refuses it"
)


def _server_ctx(
    server_pem: tuple[Path, Path],
    lowest: ssl.TLSVersion,
    highest: ssl.TLSVersion,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*server_pem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0 warns
        if ciphers:
            ctx.set_ciphers(ciphers)
        ctx.minimum_version = lowest
        ctx.maximum_version = highest
    return ctx


def _memory_handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str | None:
    """Run one handshake between the two contexts in memory; the version it reached."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(to_client, to_server, server_hostname="localhost")
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        finished = 0
        for side in (c, s):
            try:
                side.do_handshake()
                finished += 1
            except ssl.SSLWantReadError:
                pass
        s_in.write(to_server.read())
        to_client.write(s_out.read())
        if finished == 2:
            return c.version()
    return None


def _tls10_missing(server: ssl.SSLContext, ca: LabCA) -> str | None:
    """Why this OpenSSL cannot do a TLS 1.0 handshake at all, or ``None`` if it can."""
    if not ssl.HAS_TLSv1:
        return "this OpenSSL was built without TLS 1.0 (ssl.HAS_TLSv1 is False)"
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(ca.cert_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.set_ciphers("DEFAULT:@SECLEVEL=0")
            client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1
        version = _memory_handshake(server, client)
    except (ValueError, ssl.SSLError) as exc:
        return f"this OpenSSL refuses a TLS 1.0 handshake even at security level 0: {exc}"
    if version != "TLSv1":
        return f"a TLS 1.0 handshake in memory ended at {version}"
    return None


@pytest.fixture
def tls10_server(server_pem: tuple[Path, Path], ca: LabCA) -> Iterator[tuple[str, int]]:
    """A server for localhost (from the test CA) that speaks TLS 1.0 and nothing else."""
    try:
        # OpenSSL 3 signs a TLS 1.0 handshake only at security level 0.
        ctx = _server_ctx(
            server_pem, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1, "DEFAULT:@SECLEVEL=0"
        )
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"this OpenSSL cannot build a TLS 1.0 server: {exc}")
    missing = _tls10_missing(ctx, ca)
    if missing is not None:
        pytest.skip(missing)
    with tls_acceptor(ctx) as address:
        yield address


def _statuses(results: Iterable[VersionResult]) -> dict[str, str]:
    return {v.version: v.status for v in results}


@pytest.mark.parametrize("versions", [False, True], ids=["implicit-probe", "versions-flag"])
def test_a_tls10_only_server_is_explained(
    tls10_server: tuple[str, int], ca: LabCA, versions: bool
) -> None:
    host, port = tls10_server
    report = inspect(host, port, servername="localhost", cafile=ca.cert_path, versions=versions)
    assert not report.trusted
    assert report.verdict.problem == "old-tls"
    assert report.verdict.line == OLD_TLS_LINE
    assert report.handshake_error == "no TLS version in common"
    status = _statuses(report.versions)
    assert status == {
        "TLSv1.0": "accepted",
        "TLSv1.1": "refused",
        "TLSv1.2": "refused",
        "TLSv1.3": "refused",
    }
    assert report.accepted_versions == ("TLSv1.0",)
    assert [v.version for v in report.versions if v.relaxed] == ["TLSv1.0", "TLSv1.1"]
    # The chain comes from the TLS 1.0 probe, which verified it (at security level 0).
    assert report.chain_source == "TLSv1.0" and report.chain_relaxed
    assert report.chain[0].dns_names == ("localhost",)
    assert report.name_match == "localhost"
    assert not report.chain_verified  # the secure client itself never verified anything
    assert report.probe_verdict is not None and report.probe_verdict.ok
    assert report.version is None  # no session: a secure client cannot have one
    doc = report.to_json()
    assert doc["problem"] == "old-tls" and doc["verdict"] == OLD_TLS_LINE
    assert doc["accepted_versions"] == ["TLSv1.0"]
    assert doc["versions"]["TLSv1.2"] == "refused"
    assert doc["handshake_error"] == "no TLS version in common"
    assert doc["version_probes"][0]["relaxed_security_level"] is True
    assert doc["version_probes"][0]["detail"].startswith("TLSv1.0, ")


def _env(tmp_path: Path) -> dict[str, str]:
    """A user's environment with no lab (a private state directory)."""
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1")
    env.pop("COLUMNS", None)  # the default width of a pipe: long lines must not wrap
    return env


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wirelab: error: TLS with "), done.stderr
    return lines[0]


def test_the_cli_on_a_tls10_only_server(
    tls10_server: tuple[str, int], ca: LabCA, tmp_path: Path
) -> None:
    host, port = tls10_server
    target = (host, "-p", str(port), "--servername", "localhost", "--cafile", str(ca.cert_path))
    done = run_wirelab("tls", "inspect", *target, "--versions", env=_env(tmp_path))
    assert _one_error_line(done).endswith(f"failed: {OLD_TLS_LINE}")
    out = done.stdout.splitlines()
    assert f"verdict:  {OLD_TLS_LINE}" in out
    assert "session:  not established: no TLS version in common" in done.stdout
    assert "chain (as the server sent it to the TLSv1.0 probe, at OpenSSL security level 0):" in out
    for line in ("  TLSv1.0  accepted", "  TLSv1.2  refused", "  TLSv1.3  refused"):
        assert line in out
    assert "the TLSv1.0 and TLSv1.1 probes use a relaxed security level" in done.stdout

    done = run_wirelab("tls", "inspect", *target, "--json", env=_env(tmp_path))
    assert _one_error_line(done).endswith(f"failed: {OLD_TLS_LINE}")
    doc = json.loads(done.stdout)
    assert doc["problem"] == "old-tls" and doc["verdict"] == OLD_TLS_LINE
    assert doc["accepted_versions"] == ["TLSv1.0"]
    assert doc["versions"] == {
        "TLSv1.0": "accepted",
        "TLSv1.1": "refused",
        "TLSv1.2": "refused",
        "TLSv1.3": "refused",
    }


@pytest.fixture
def sha1_tls12_server(server_pem: tuple[Path, Path]) -> Iterator[tuple[str, int]]:
    """TLS 1.2 only, with one SHA-1 suite: no version and no cipher our client offers."""
    ctx = _server_ctx(
        server_pem, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA"
    )
    with tls_acceptor(ctx) as address:
        yield address


def test_no_common_ground_and_no_probe_gets_through(
    sha1_tls12_server: tuple[str, int], ca: LabCA, tmp_path: Path
) -> None:
    """Nothing to report but the failure: one error saying what the probes saw."""
    host, port = sha1_tls12_server
    with pytest.raises(TLSError, match=r"no cipher in common") as caught:
        inspect(host, port, servername="localhost", cafile=ca.cert_path)
    message = str(caught.value)
    assert "offered one at a time, " in message
    assert "TLSv1.2 and TLSv1.3 were refused" in message
    assert isinstance(caught.value.__cause__, ssl.SSLError)

    done = run_wirelab(
        "tls", "inspect", host, "-p", str(port), "--servername", "localhost",
        "--cafile", str(ca.cert_path), env=_env(tmp_path),
    )  # fmt: skip
    line = _one_error_line(done)
    assert "no cipher in common" in line and "TLSv1.2 and TLSv1.3 were refused" in line
    assert done.stdout == ""


@pytest.fixture
def tls13_server(server_pem: tuple[Path, Path]) -> Iterator[tuple[str, int]]:
    ctx = _server_ctx(server_pem, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    with tls_acceptor(ctx) as address:
        yield address


def test_a_tls13_only_server_refuses_a_client_capped_at_tls12(
    tls13_server: tuple[str, int], ca: LabCA
) -> None:
    host, port = tls13_server
    status = _statuses(probe_versions(host, port, servername="localhost", cafile=ca.cert_path))
    assert status["TLSv1.2"] == "refused"  # the TLS 1.2 probe offers at most TLS 1.2
    assert status["TLSv1.3"] == "accepted"
    assert status["TLSv1.0"] in ("refused", "not supported by the local OpenSSL")
    assert status["TLSv1.1"] in ("refused", "not supported by the local OpenSSL")
    report = inspect(host, port, servername="localhost", cafile=ca.cert_path, versions=True)
    assert report.trusted and report.version == "TLSv1.3"
    assert report.handshake_error is None and report.chain_source is None
    assert report.accepted_versions == ("TLSv1.3",)
