"""Our ftplib clients against our server: downloads, uploads, mirror, resume, FTPS."""

from __future__ import annotations

import filecmp
import logging
import ssl
from pathlib import Path

import pytest

from tests.ftp.conftest import FTPFiles
from wirelab.errors import ConfigError, TLSError
from wirelab.ftp import client as ftp
from wirelab.ftp.seed import OLD_VERSIONS, readme_text
from wirelab.ftp.server import FTPLabServer

TARBALL = "/pub/linux/kernel/v1.0/linux-1.0.tar.gz"


def _target(server: FTPLabServer, **kw: object) -> ftp.FTPTarget:
    host, port = server.address
    return ftp.FTPTarget(host, port, timeout=10.0, **kw)  # type: ignore[arg-type]


def _brandon(server: FTPLabServer, files: FTPFiles, tls: str = "none") -> ftp.FTPTarget:
    context = ssl.create_default_context(cafile=str(files.ca.cert_path)) if tls != "none" else None
    return _target(server, user="brandon", password="abc123", tls=tls, context=context)


def test_welcome_and_working_directory(ftp_server: FTPLabServer) -> None:
    banner, cwd = ftp.welcome(_target(ftp_server))
    assert banner.startswith("220 ") and cwd == "/"


def test_binary_download_with_the_size_from_150_and_progress(
    ftp_server: FTPLabServer, ftp_files: FTPFiles, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    local = tmp_path / "linux-1.0.tar.gz"
    with ftp.open_session(_target(ftp_server)) as session:
        result = ftp.download(session, TARBALL, local, progress=lambda d, t: seen.append((d, t)))
    size = (ftp_files.public / TARBALL.lstrip("/")).stat().st_size
    assert result.expected == result.bytes == size
    assert local.read_bytes() == (ftp_files.public / TARBALL.lstrip("/")).read_bytes()
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert not ftp.part_path(local).exists()


def test_download_refuses_to_overwrite_without_force(
    ftp_server: FTPLabServer, tmp_path: Path
) -> None:
    local = tmp_path / "patch8.gz"
    local.write_bytes(b"mine")
    with ftp.open_session(_target(ftp_server)) as session:
        with pytest.raises(ConfigError, match="refusing to overwrite"):
            ftp.download(session, "/pub/linux/kernel/v1.0/patch8.gz", local)
        assert local.read_bytes() == b"mine"
        ftp.download(session, "/pub/linux/kernel/v1.0/patch8.gz", local, force=True)
    assert local.read_bytes()[:2] == b"\x1f\x8b"


def test_ascii_download_writes_local_line_ends_once(
    ftp_server: FTPLabServer, tmp_path: Path
) -> None:
    local = tmp_path / "README"
    with ftp.open_session(_target(ftp_server)) as session:
        ftp.download_ascii(session, "/pub/linux/kernel/README", local)
    assert local.read_text() == readme_text()
    assert b"\r" not in local.read_bytes()


def test_cut_transfer_resumed_with_rest(
    ftp_server: FTPLabServer, ftp_files: FTPFiles, tmp_path: Path
) -> None:
    local = tmp_path / "linux-1.0.tar.gz"

    def cut(done: int, total: int | None) -> None:
        if done > 100_000:
            raise KeyboardInterrupt  # the user pressed Ctrl-C midway

    with ftp.open_session(_target(ftp_server)) as session, pytest.raises(KeyboardInterrupt):
        ftp.download(session, TARBALL, local, progress=cut)
    partial = ftp.part_path(local)
    assert not local.exists() and partial.stat().st_size > 100_000
    kept = partial.stat().st_size
    with ftp.open_session(_target(ftp_server)) as session:
        result = ftp.download(session, TARBALL, local, resume=True)
    assert result.resumed_from == kept
    assert local.read_bytes() == (ftp_files.public / TARBALL.lstrip("/")).read_bytes()


def test_uploads_simple_chunked_empty_and_no_overwrite(
    ftp_server: FTPLabServer, ftp_files: FTPFiles, tmp_path: Path
) -> None:
    big = tmp_path / "client-big.bin"
    big.write_bytes(bytes(range(256)) * 1000)
    empty = tmp_path / "client-empty.bin"
    empty.write_bytes(b"")
    sizes: list[tuple[int, int | None]] = []
    with ftp.open_session(_brandon(ftp_server, ftp_files)) as session:
        ftp.upload(session, big, force=True, progress=lambda d, t: sizes.append((d, t)))
        ftp.upload(session, empty, force=True, progress=lambda d, t: sizes.append((d, t)))
        ftp.upload(session, big, "client-simple.bin", chunked=False, force=True)
        with pytest.raises(ConfigError, match="refusing to overwrite"):
            ftp.upload(session, big)
    assert (ftp_files.home / "client-big.bin").read_bytes() == big.read_bytes()
    assert (ftp_files.home / "client-simple.bin").read_bytes() == big.read_bytes()
    assert (ftp_files.home / "client-empty.bin").read_bytes() == b""
    assert (0, 0) in sizes  # the empty file's progress: no division by zero


def test_mirror_round_trip_is_byte_identical_and_skips_the_loop(
    ftp_server: FTPLabServer, ftp_files: FTPFiles, tmp_path: Path
) -> None:
    down = tmp_path / "down"
    with ftp.open_session(_target(ftp_server)) as session:
        report = ftp.mirror_down(session, OLD_VERSIONS, down)
    assert report.files == 5 and any("loop" in s for s in report.skipped)
    with ftp.open_session(_brandon(ftp_server, ftp_files, tls="explicit")) as session:
        up = ftp.mirror_up(session, down, "/mirror-test", force=True)
    assert up.files == report.files
    source = ftp_files.public / OLD_VERSIONS.lstrip("/")
    for directory in (down, ftp_files.home / "mirror-test"):
        cmp = filecmp.dircmp(source, directory, ignore=["loop"])
        assert _same(cmp), directory


def _same(cmp: filecmp.dircmp[str]) -> bool:
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same(sub) for sub in cmp.subdirs.values())


def test_list_line_parser_reads_unix_lines() -> None:
    entry = ftp.parse_list_line("drwxr-xr-x    2 0        0            4096 Mar 14  1994 v1.0")
    assert entry == ftp.RemoteEntry("v1.0", "dir", 4096)
    link = ftp.parse_list_line("lrwxrwxrwx 1 0 0 1 Mar 14 1994 loop -> .")
    assert link is not None and link.name == "loop" and link.kind == "link"
    assert ftp.parse_list_line("total 12") is None


def test_wrong_ca_is_a_tls_error(ftp_server: FTPLabServer) -> None:
    target = _target(
        ftp_server,
        user="brandon",
        password="abc123",
        tls="explicit",
        context=ssl.create_default_context(),
    )
    with pytest.raises(TLSError), ftp.open_session(target):
        pass


def test_missing_remote_file_is_one_error(ftp_server: FTPLabServer, tmp_path: Path) -> None:
    with ftp.open_session(_target(ftp_server)) as session, pytest.raises(ftp.FTPReplyError) as e:
        ftp.download(session, "/pub/nothing-here", tmp_path / "x")
    assert e.value.code == 550


def test_a_fresh_download_sends_the_books_commands(
    ftp_server: FTPLabServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pyftpdlib")
    with ftp.open_session(_target(ftp_server)) as session:
        ftp.download(session, "/pub/linux/kernel/v1.0/patch8.gz", tmp_path / "patch8.gz")
    sent = [r.getMessage().split(" <- ", 1)[1] for r in caplog.records if " <- " in r.getMessage()]
    start = sent.index("TYPE I")
    assert sent[start:] == ["TYPE I", "PASV", "RETR /pub/linux/kernel/v1.0/patch8.gz", "QUIT"]
