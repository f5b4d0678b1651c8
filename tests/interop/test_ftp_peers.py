"""Chapter 17 with independent peers: curl and lftp against our lab FTP host, and our
clients against vsftpd (the server the book's playground ran)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.interop.ftp_peers import need, vsftpd_server
from wirelab.ftp import client as ftp
from wirelab.ftp.seed import OLD_VERSIONS, build_public_tree, readme_text
from wirelab.lab.state import LabState, ServiceView
from wirelab.net.ca import LabCA

TARBALL = "/pub/linux/kernel/v1.0/linux-1.0.tar.gz"


def _public(state: LabState) -> Path:
    return Path(state.directory) / "ftp" / "anonymous"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)


# -- curl and lftp against our server ---------------------------------------------------------


def test_curl_lists_and_fetches_over_explicit_ftps(
    lab_ftp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    curl = need("curl")
    port = lab_ftp.endpoint("ftp").port
    base = f"ftp://localhost:{port}"
    tls = ["--ssl-reqd", "--cacert", str(wirelab_lab.ca), "--max-time", "30", "-sS"]
    listing = _run([curl, *tls, "--list-only", f"{base}/pub/linux/kernel/v1.0/"])
    assert listing.returncode == 0, listing.stderr
    assert sorted(listing.stdout.split()) == ["linux-1.0.tar.gz", "patch8.gz"]
    out = tmp_path / "linux.tgz"
    fetched = _run([curl, *tls, "-o", str(out), f"{base}{TARBALL}"])
    assert fetched.returncode == 0, fetched.stderr
    assert out.read_bytes() == (_public(wirelab_lab) / TARBALL.lstrip("/")).read_bytes()


def test_curl_implicit_ftps_and_upload(
    lab_ftp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    curl = need("curl")
    port = lab_ftp.endpoint("ftps").port
    tls = ["--cacert", str(wirelab_lab.ca), "--max-time", "30", "-sS"]
    readme = _run([curl, *tls, f"ftps://localhost:{port}/pub/linux/kernel/README"])
    assert readme.returncode == 0, readme.stderr
    assert readme.stdout == readme_text()
    source = tmp_path / "curl-upload.txt"
    source.write_text("uploaded by curl\n")
    account = wirelab_lab.account
    up = _run(
        [
            curl,
            *tls,
            "--user",
            f"{account.user}:{account.password}",
            "-T",
            str(source),
            f"ftps://localhost:{port}/",
        ]
    )
    assert up.returncode == 0, up.stderr
    home = Path(wirelab_lab.directory) / "ftp" / "home" / account.user
    assert (home / "curl-upload.txt").read_text() == "uploaded by curl\n"


def test_curl_refuses_a_server_it_cannot_verify(lab_ftp: ServiceView) -> None:
    curl = need("curl")
    port = lab_ftp.endpoint("ftp").port
    done = _run([curl, "--ssl-reqd", "-sS", "--max-time", "30", f"ftp://localhost:{port}/"])
    assert done.returncode != 0  # the lab CA is not in the system's store


def test_lftp_lists_and_fetches_over_ftps(
    lab_ftp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    lftp = need("lftp")
    port = lab_ftp.endpoint("ftp").port
    out = tmp_path / "patch8.gz"
    script = "; ".join(
        [
            f"set ssl:ca-file {wirelab_lab.ca}",
            "set ssl:verify-certificate yes",
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set net:max-retries 1",
            "set net:timeout 20",
            f"open -u anonymous,lftp@ -p {port} localhost",
            "cls -1 /pub/linux/kernel/v1.0/",
            f"get /pub/linux/kernel/v1.0/patch8.gz -o {out}",
            "bye",
        ]
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    done = _run([lftp, "-c", script], env=env)
    assert done.returncode == 0, done.stderr
    assert "linux-1.0.tar.gz" in done.stdout and "patch8.gz" in done.stdout
    expected = (_public(wirelab_lab) / "pub/linux/kernel/v1.0/patch8.gz").read_bytes()
    assert out.read_bytes() == expected


# -- our clients against vsftpd ---------------------------------------------------------------


@pytest.fixture
def vsftpd(tmp_path: Path) -> object:
    root = build_public_tree(tmp_path / "anon", tarball_bytes=512 * 1024)
    incoming = root / "incoming"
    incoming.mkdir()
    shutil.chown(incoming, "ftp", "ftp")
    ca = LabCA.load_or_create(tmp_path / "ca")
    cert, key = ca.server_cert_for(["localhost"], tmp_path / "ca")
    with vsftpd_server(tmp_path, root, cert, key) as address:
        yield address, root, ssl.create_default_context(cafile=str(ca.cert_path))


def test_our_clients_against_vsftpd(vsftpd: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    (host, port), root, context = vsftpd
    plain = ftp.FTPTarget(host, port, timeout=20)
    banner, cwd = ftp.welcome(plain)
    assert banner.startswith("220") and cwd == "/"
    tls = ftp.FTPTarget("localhost", port, tls="explicit", context=context, timeout=20)
    with ftp.open_session(tls) as session:
        names = ftp.list_names(session, "/pub/linux/kernel/v1.0")  # vsftpd: full paths
        assert sorted(n.rsplit("/", 1)[-1] for n in names) == [
            "linux-1.0.tar.gz",
            "patch8.gz",
        ]
        result = ftp.download(session, TARBALL, tmp_path / "linux.tgz")
        assert result.expected == result.bytes  # vsftpd's 150 carries the size
        ftp.download_ascii(session, "/pub/linux/kernel/README", tmp_path / "README")
        report = ftp.mirror_down(session, OLD_VERSIONS, tmp_path / "old")  # LIST, no MLSD
        source = tmp_path / "up.bin"
        source.write_bytes(b"vsftpd" * 1000)
        session.cwd("/incoming")
        ftp.upload(session, source)
    assert (tmp_path / "linux.tgz").read_bytes() == (root / TARBALL.lstrip("/")).read_bytes()
    assert (tmp_path / "README").read_text() == readme_text()
    assert report.files == 5 and any("loop" in s for s in report.skipped)
    assert (root / "incoming" / "up.bin").read_bytes() == source.read_bytes()
