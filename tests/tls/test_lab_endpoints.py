"""Every lab service that speaks TLS uses the lab CA: openssl s_client and our inspector agree.

For every endpoint of the whole lab marked ``tls``, ``openssl s_client -verify_return_error
-CAfile <lab CA> -servername <host> -verify_hostname <host>`` must verify, and so must
``wirelab.tls.inspect``. The chapter 6 lesson endpoints are the deliberate exceptions: there
both must refuse, for the lesson's reason.

STARTTLS: an endpoint named after a protocol that has STARTTLS (``smtp``, ``submission``,
``pop3``, ``imap``, ``ftp``) and not marked ``tls`` must offer STARTTLS with the lab CA. Until
chapters 13-17 bring such endpoints, the same check runs (never skips) against real STARTTLS
servers (aiosmtpd, and the POP3/IMAP/FTP responders of ``starttls_servers``) that present a
certificate from the session lab's CA, and must fail for the same servers presenting a
certificate from another CA: so the check is known to pass and to fail before any lab
endpoint depends on it.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState
from wirelab.net.ca import LabCA
from wirelab.net.tlsctx import server_context
from wirelab.tls.badcerts import LESSONS
from wirelab.tls.inspect import inspect
from wirelab.tls.service import client_cert_paths

from .starttls_servers import aiosmtpd_server, ftp_handler, imap_handler, pop3_handler
from .tls_helpers import one_shot

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
    return s_client_at(lab.ca, ep.address, ep.port, ep.host, *extra, starttls=starttls)


def s_client_at(
    cafile: str, address: str, port: int, host: str, *extra: str, starttls: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [
        OPENSSL,
        "s_client",
        "-connect",
        f"{address}:{port}",
        "-servername",
        host,
        "-verify_hostname",
        host,
        "-CAfile",
        cafile,
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
        cert: Path | None = None
        key: Path | None = None
        if (ep.service, ep.endpoint) == ("tls", "clientauth"):
            cert, key = client_cert_paths(wirelab_lab.directory)
        report = inspect(
            ep.address,
            ep.port,
            servername=ep.host,
            cafile=wirelab_lab.ca,
            certfile=cert,
            keyfile=key,
        )
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


def starttls_failures(cafile: str, targets: list[tuple[str, str, int, str, str]]) -> list[str]:
    """The STARTTLS check: (name, address, port, host, protocol) each verify with ``cafile``."""
    failures = []
    for name, address, port, host, protocol in targets:
        report = inspect(address, port, servername=host, cafile=cafile, starttls=protocol)
        done = s_client_at(cafile, address, port, host, starttls=protocol)
        if not report.trusted or "Verification: OK" not in done.stdout + done.stderr:
            failures.append(f"{name}: {report.verdict.line}")
    return failures


def test_starttls_endpoints_use_the_lab_ca(wirelab_lab: LabState) -> None:
    """Every lab STARTTLS endpoint (none before chapters 13-17) verifies with the lab CA."""
    targets = [
        (ep.name, ep.address, ep.port, ep.host, protocol)
        for ep, protocol in starttls_endpoints(wirelab_lab)
    ]
    assert not starttls_failures(wirelab_lab.ca, targets)


@contextlib.contextmanager
def starttls_servers(ctx: ssl.SSLContext) -> Iterator[list[tuple[str, str, int, str, str]]]:
    """One real STARTTLS server per protocol, each presenting ``ctx``'s certificate."""
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(aiosmtpd_server(ctx))
        targets = [("smtp", smtp[0], smtp[1], "localhost", "smtp")]
        for protocol, handler in (("pop3", pop3_handler), ("imap", imap_handler)):
            # s_client and the inspector each make one connection
            for n in range(2):
                host, port = stack.enter_context(one_shot(handler(ctx)))
                targets.append((f"{protocol}#{n}", host, port, "localhost", protocol))
        for n in range(2):
            host, port = stack.enter_context(one_shot(ftp_handler(ctx)))
            targets.append((f"ftp#{n}", host, port, "localhost", "ftp"))
        yield targets


def _pairs(
    targets: list[tuple[str, str, int, str, str]],
) -> list[list[tuple[str, str, int, str, str]]]:
    """Group the one-shot servers so that the check's two clients reach two servers."""
    return [targets[:1], *[targets[i : i + 2] for i in range(1, len(targets), 2)]]


def _check_pairs(cafile: str, targets: list[tuple[str, str, int, str, str]]) -> list[str]:
    failures = []
    for group in _pairs(targets):
        name, address, port, host, protocol = group[0]
        report = inspect(address, port, servername=host, cafile=cafile, starttls=protocol)
        other = group[-1]
        done = s_client_at(cafile, other[1], other[2], host, starttls=protocol)
        if not report.trusted or "Verification: OK" not in done.stdout + done.stderr:
            failures.append(f"{name}: {report.verdict.line}")
    return failures


def test_the_starttls_check_passes_and_fails_on_real_servers(
    wirelab_lab: LabState, tmp_path: Path
) -> None:
    """The check above, meaningful before the lab has STARTTLS endpoints (never skipped)."""
    lab_ca = LabCA.load_or_create(Path(wirelab_lab.directory) / "ca")
    assert str(lab_ca.cert_path) == str(Path(wirelab_lab.ca)), "not the lab's CA"
    good = server_context(*lab_ca.server_cert_for(["localhost"], tmp_path / "good"))
    with starttls_servers(good) as targets:
        assert _check_pairs(wirelab_lab.ca, targets) == []
    other_ca = LabCA.load_or_create(tmp_path / "other-ca", name="not the lab CA")
    bad = server_context(*other_ca.server_cert_for(["localhost"], tmp_path / "bad"))
    with starttls_servers(bad) as targets:
        failures = _check_pairs(wirelab_lab.ca, targets)
    assert len(failures) == 4 and all("untrusted" in line for line in failures), failures


def test_the_tls_state_is_private(wirelab_lab: LabState) -> None:
    """Issue 11 §8: the lab's tls/ directory (client key, lesson keys) was 0755."""
    tls = Path(wirelab_lab.directory) / "tls"
    for path in (tls, tls / "lessons"):
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
