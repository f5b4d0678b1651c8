"""The inspector against the lab's TLS service: every broken certificate gets its verdict."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
from pathlib import Path

import pytest

from wirelab.errors import ConnectionRefused, TLSError
from wirelab.lab.state import LabState, ServiceView
from wirelab.net.ca import LabCA
from wirelab.tls.badcerts import LESSONS, WRONG_HOST, Lesson, issue_lesson
from wirelab.tls.certinfo import CertInfo, describe
from wirelab.tls.inspect import Inspection, inspect
from wirelab.tls.verdict import findings

from .tls_helpers import one_shot


def lab_inspect(
    lab_tls: ServiceView, endpoint: str, *, versions: bool = False, insecure: bool = False
) -> Inspection:
    ep = lab_tls.endpoint(endpoint)
    return inspect(
        ep.address,
        ep.port,
        servername=ep.host,
        lab_cafile=lab_tls.state.ca,
        versions=versions,
        insecure=insecure,
    )


def test_the_greeting_endpoint_is_trusted(lab_tls: ServiceView) -> None:
    report = lab_inspect(lab_tls, "greeting")
    assert report.trusted
    assert report.name_match == "localhost"
    assert report.version == "TLSv1.3"
    assert (report.cipher_bits or 0) >= 128
    leaf, root = report.chain
    assert leaf.dns_names == ("localhost", "www.example.com")
    assert set(leaf.ip_addresses) == {"127.0.0.1", "::1"}
    assert leaf.key_type == "EC" and leaf.key_bits == 256
    assert leaf.signature_algorithm == "ecdsa-with-sha256"
    assert root.is_ca and root.self_signed
    assert report.findings == []


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.endpoint for lesson in LESSONS])
def test_each_broken_certificate_gets_its_verdict(lab_tls: ServiceView, lesson: Lesson) -> None:
    endpoint, problem = lesson.endpoint, lesson.problem
    if endpoint not in lab_tls.endpoints:
        pytest.skip(f"{endpoint} is not served by this OpenSSL")
    report = lab_inspect(lab_tls, endpoint)
    assert not report.trusted
    assert report.verdict.problem == problem, report.verdict.line
    assert report.version is None  # no session without --insecure
    assert report.chain  # the chain as sent is still reported
    line = report.verdict.line
    expected = {
        "expired": "expired: the certificate ran out on ",
        "wrong-host": f"wrong host: the certificate names {WRONG_HOST}, not localhost",
        "self-signed": "self-signed: the certificate (localhost) vouches for itself",
        "untrusted": "untrusted: the chain ends in wirelab untrusted CA",
        "weak-key": "weak key: the certificate's RSA 1024-bit key is too weak",
    }[problem]
    assert line.startswith(expected), line
    assert "\n" not in line


def test_insecure_shows_the_session_but_keeps_the_verdict(lab_tls: ServiceView) -> None:
    report = lab_inspect(lab_tls, "selfsigned", insecure=True)
    assert not report.trusted
    assert report.verdict.problem == "self-signed"
    assert report.insecure_session
    assert report.version in ("TLSv1.2", "TLSv1.3")


def test_versions(lab_tls: ServiceView) -> None:
    report = lab_inspect(lab_tls, "greeting", versions=True)
    status = {v.version: v.status for v in report.versions}
    assert status["TLSv1.2"] == "accepted"
    assert status["TLSv1.3"] == "accepted"
    assert status["TLSv1.0"] in ("refused", "not supported by the local OpenSSL")
    assert status["TLSv1.1"] in ("refused", "not supported by the local OpenSSL")


def test_versions_of_an_untrusted_server_are_still_probed(lab_tls: ServiceView) -> None:
    report = lab_inspect(lab_tls, "untrusted", versions=True)
    status = {v.version: v.status for v in report.versions}
    assert status["TLSv1.3"] == "accepted"


def test_json_document(lab_tls: ServiceView) -> None:
    doc = lab_inspect(lab_tls, "expired").to_json()
    assert doc["trusted"] is False
    assert doc["problem"] == "expired"
    assert doc["chain"][0]["dns_names"] == ["localhost", "www.example.com"]
    assert doc["session"]["version"] is None
    assert doc["versions"] is None


def test_inspecting_a_plaintext_port(ca: LabCA) -> None:
    def banner(conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
        conn.recv(1024)

    with one_shot(banner) as (host, port), pytest.raises(TLSError, match="peer does not speak TLS"):
        inspect(host, port, cafile=ca.cert_path)


def test_inspecting_a_closed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefused):
        inspect("127.0.0.1", port)


def test_findings_see_every_defect_at_once(ca: LabCA, tmp_path: Path) -> None:
    """OpenSSL names one failure; the chain itself shows all of them."""
    cert, _ = issue_lesson("expired", ca, tmp_path, ["localhost"])
    leaf = describe_pem(cert)
    assert findings((leaf,), "other.example.com") == ["expired", "wrong-host"]
    later = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    assert findings((leaf,), "localhost", now=later) == []


def describe_pem(path: Path) -> CertInfo:
    pem = path.read_text()
    first = pem[: pem.index("-----END CERTIFICATE-----") + 25]
    return describe(ssl.PEM_cert_to_DER_cert(first))


def test_the_lab_state_points_at_the_lab_ca(wirelab_lab: LabState) -> None:
    assert Path(wirelab_lab.ca).is_file()


@pytest.mark.internet
@pytest.mark.skipif(
    not os.environ.get("WIRELAB_INTERNET"), reason="needs the internet (set WIRELAB_INTERNET=1)"
)
def test_a_real_host_against_the_system_store() -> None:
    report = inspect("www.python.org", 443, versions=True)
    assert report.trusted, report.verdict.line
    assert report.trust == "system store"
    assert {v.version: v.status for v in report.versions}["TLSv1.3"] == "accepted"
