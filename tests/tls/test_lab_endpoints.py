"""Every lab service that speaks TLS uses the lab CA: openssl s_client and our inspector agree.

For every endpoint of the whole lab marked ``tls``, ``openssl s_client -verify_return_error
-CAfile <lab CA> -servername <host> -verify_hostname <host>`` must verify, and so must
``wirelab.tls.inspect``. The chapter 6 lesson endpoints are the deliberate exceptions: there
both must refuse, for the lesson's reason.

STARTTLS: an endpoint named after a protocol that has STARTTLS (``smtp``, ``submission``,
``pop3``, ``imap``, ``ftp``) and not marked ``tls`` must offer STARTTLS with the lab CA.
"""

from __future__ import annotations

import subprocess

import pytest

from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState
from wirelab.tls.badcerts import LESSONS
from wirelab.tls.inspect import inspect
from wirelab.tls.service import client_cert_paths

OPENSSL = "/usr/bin/openssl"
LESSON = {("tls", lesson.endpoint): lesson for lesson in LESSONS}
STARTTLS = {"smtp": "smtp", "submission": "smtp", "pop3": "pop3", "imap": "imap", "ftp": "ftp"}
#: OpenSSL's verify error text for each lesson (x509_txt.c).
OPENSSL_SAYS = {
    "expired": "certificate has expired",
    "wrong-host": "hostname mismatch",
    "self-signed": "self-signed certificate",
    "untrusted": "self-signed certificate in certificate chain",
    "weak-key": "EE certificate key too weak",
}


def s_client(
    lab: LabState, ep: BoundEndpoint, *extra: str, starttls: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [
        OPENSSL,
        "s_client",
        "-connect",
        f"{ep.address}:{ep.port}",
        "-servername",
        ep.host,
        "-verify_hostname",
        ep.host,
        "-CAfile",
        lab.ca,
        "-verify_return_error",
        "-brief",
        *extra,
    ]
    if starttls:
        argv += ["-starttls", starttls]
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=30, check=False)


def tls_endpoints(lab: LabState) -> list[BoundEndpoint]:
    return [ep for ep in lab.endpoints if ep.tls]


def test_the_lab_has_tls_endpoints(wirelab_lab: LabState) -> None:
    names = {ep.name for ep in tls_endpoints(wirelab_lab)}
    assert {"tls.greeting", "tls.clientauth", "tls.expired"} <= names


def test_openssl_verifies_every_tls_endpoint_with_the_lab_ca(wirelab_lab: LabState) -> None:
    failures = []
    for ep in tls_endpoints(wirelab_lab):
        extra: tuple[str, ...] = ()
        if (ep.service, ep.endpoint) == ("tls", "clientauth"):
            cert, key = client_cert_paths(wirelab_lab.directory)
            extra = ("-cert", str(cert), "-key", str(key))
        done = s_client(wirelab_lab, ep, *extra)
        output = done.stdout + done.stderr
        lesson = LESSON.get((ep.service, ep.endpoint))
        if lesson is None:
            if done.returncode != 0 or "Verification: OK" not in output:
                failures.append(f"{ep.name}: {output.strip()[-300:]}")
        else:
            if done.returncode == 0 or OPENSSL_SAYS[lesson.problem] not in output:
                failures.append(f"{ep.name} should fail with {lesson.problem}: {output[-300:]}")
    assert not failures, "\n".join(failures)


def test_the_inspector_agrees_on_every_tls_endpoint(wirelab_lab: LabState) -> None:
    failures = []
    for ep in tls_endpoints(wirelab_lab):
        report = inspect(ep.address, ep.port, servername=ep.host, cafile=wirelab_lab.ca)
        lesson = LESSON.get((ep.service, ep.endpoint))
        expected = lesson.problem if lesson else None
        if report.verdict.problem != expected:
            failures.append(f"{ep.name}: {report.verdict.line}")
    assert not failures, "\n".join(failures)


def starttls_endpoints(lab: LabState) -> list[tuple[BoundEndpoint, str]]:
    return [
        (ep, STARTTLS[ep.endpoint])
        for ep in lab.endpoints
        if not ep.tls and ep.protocol == "tcp" and ep.endpoint in STARTTLS
    ]


def test_starttls_endpoints_use_the_lab_ca(wirelab_lab: LabState) -> None:
    found = starttls_endpoints(wirelab_lab)
    if not found:
        pytest.skip("no STARTTLS endpoints in this lab yet")
    failures = []
    for ep, protocol in found:
        report = inspect(
            ep.address, ep.port, servername=ep.host, cafile=wirelab_lab.ca, starttls=protocol
        )
        done = s_client(wirelab_lab, ep, starttls=protocol)
        if not report.trusted or "Verification: OK" not in done.stdout + done.stderr:
            failures.append(f"{ep.name}: {report.verdict.line}")
    assert not failures, "\n".join(failures)
