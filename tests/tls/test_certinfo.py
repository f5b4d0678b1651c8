"""Certificate descriptions and verdicts from real certificates (no network)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirelab.errors import RemoteProtocolError
from wirelab.net.ca import LabCA
from wirelab.tls.badcerts import WRONG_HOST, issue_lesson, self_signed
from wirelab.tls.certinfo import CertInfo, common_name, describe
from wirelab.tls.verdict import verdict


def leaf_of(path: Path) -> CertInfo:
    pem = path.read_text()
    return describe(ssl.PEM_cert_to_DER_cert(pem[: pem.index("-----END CERTIFICATE-----") + 25]))


def test_describe_a_lab_server_certificate(ca: LabCA, server_pem: tuple[Path, Path]) -> None:
    leaf = leaf_of(server_pem[0])
    assert leaf.dns_names == ("localhost",)
    assert leaf.ip_addresses == ("127.0.0.1", "::1")
    assert "CN=localhost" in leaf.subject and "CN=wirelab lab CA" in leaf.issuer
    assert leaf.key == "EC 256 (secp256r1)"
    assert not leaf.is_ca and not leaf.self_signed
    assert len(leaf.sha256.split(":")) == 32
    root = describe(ssl.PEM_cert_to_DER_cert(ca.cert_pem.decode()))
    assert root.is_ca and root.self_signed
    assert leaf.to_json()["not_after"].endswith("+00:00")


def test_describe_the_lesson_certificates(ca: LabCA, tmp_path: Path) -> None:
    names = ["localhost"]
    weak = leaf_of(issue_lesson("weakkey", ca, tmp_path, names)[0])
    assert (weak.key_type, weak.key_bits) == ("RSA", 1024)
    wrong = leaf_of(issue_lesson("wronghost", ca, tmp_path, names)[0])
    assert wrong.names == (WRONG_HOST,)
    lone = leaf_of(issue_lesson("selfsigned", ca, tmp_path, names)[0])
    assert lone.self_signed and not lone.is_ca
    other = leaf_of(issue_lesson("untrusted", ca, tmp_path, names)[0])
    assert "wirelab untrusted CA" in other.issuer


def test_common_name() -> None:
    issued = self_signed(["printer.example.com"])
    der = ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())
    assert common_name(der) == "printer.example.com"
    assert common_name(b"junk") is None


@given(st.binary(max_size=600))
def test_arbitrary_bytes_are_a_protocol_error_or_a_certificate(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        describe(data)


@pytest.mark.parametrize(
    ("code", "problem", "start"),
    [
        (None, None, "trusted: the chain verifies against the system store"),
        (9, "not-yet-valid", "not yet valid: the certificate starts on"),
        (20, "untrusted", "untrusted: signed by wirelab lab CA"),
        (68, "weak-signature", "weak signature:"),
        (23, "revoked", "revoked:"),
        (999, "other", "not trusted: something odd (OpenSSL verify error 999)"),
    ],
)
def test_verdict_lines(
    server_pem: tuple[Path, Path], code: int | None, problem: str | None, start: str
) -> None:
    leaf = leaf_of(server_pem[0])
    judged = verdict(code, "something odd", (leaf,), "localhost", "system store")
    assert judged.ok is (code is None)
    assert judged.problem == problem
    assert judged.line.startswith(start), judged.line


def test_expired_verdict_counts_days(ca: LabCA, tmp_path: Path) -> None:
    leaf = leaf_of(issue_lesson("expired", ca, tmp_path, ["localhost"])[0])
    later = leaf.not_after + dt.timedelta(days=10, hours=1)
    line = verdict(10, "certificate has expired", (leaf,), "localhost", "x", now=later).line
    assert line == f"expired: the certificate ran out on {leaf.not_after:%Y-%m-%d} (10 days ago)"
