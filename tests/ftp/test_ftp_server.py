"""Our FTP server driven by the standard library's ftplib (an independent client).

Named security tests: path traversal, FTP bounce, anonymous writes, brute force, idle
timeout, connection caps, TLS required.
"""

from __future__ import annotations

import ftplib
import io
import logging
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ftp.conftest import TEST_TARBALL, FTPFiles
from wirelab.ftp.seed import LOOP_LINK, readme_text
from wirelab.ftp.server import MAX_PATH_CHARS, FTPLabServer


def _anon(server: FTPLabServer) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect(*server.address, timeout=10)
    ftp.login()
    return ftp


def _context(files: FTPFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(files.ca.cert_path))


def test_banner_login_and_book_paths(ftp_server: FTPLabServer) -> None:
    ftp = ftplib.FTP()
    ftp.connect(*ftp_server.address, timeout=10)
    assert ftp.getwelcome().startswith("220 ")
    ftp.login()
    assert ftp.pwd() == "/"
    ftp.cwd("/pub/linux/kernel/v1.0")
    assert sorted(ftp.nlst()) == ["linux-1.0.tar.gz", "patch8.gz"]
    lines: list[str] = []
    ftp.dir("/pub/academic/astronomy", lines.append)
    assert any(line.startswith("d") and line.endswith("catalogs") for line in lines)
    facts = dict(ftp.mlsd("/pub/linux/kernel"))
    assert facts["README"]["type"] == "file" and facts["v1.0"]["type"] == "dir"
    ftp.quit()


def test_ascii_mode_sends_crlf_and_binary_keeps_bytes(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    raw = io.BytesIO()
    ftp.retrbinary("RETR /pub/linux/kernel/README", raw.write)
    assert raw.getvalue() == readme_text().encode()
    ftp.voidcmd("TYPE A")
    wire = b""
    with ftp.transfercmd("RETR /pub/linux/kernel/README") as data:
        while chunk := data.recv(65536):
            wire += chunk
    ftp.voidresp()
    assert wire == readme_text().replace("\n", "\r\n").encode()
    ftp.quit()


def test_150_reply_carries_the_size_as_vsftpd_does(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    ftp.voidcmd("TYPE I")
    data, size = ftp.ntransfercmd("RETR /pub/linux/kernel/v1.0/linux-1.0.tar.gz")
    got = 0
    with data:
        while chunk := data.recv(65536):
            got += len(chunk)
    ftp.voidresp()
    assert size == got > TEST_TARBALL
    ftp.quit()


def test_anonymous_cannot_write(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    for attempt in (
        lambda: ftp.storbinary("STOR /pub/new.txt", io.BytesIO(b"x")),
        lambda: ftp.mkd("/pub/newdir"),
        lambda: ftp.delete("/pub/linux/kernel/README"),
        lambda: ftp.rename("/pub/linux/kernel/README", "/pub/README"),
    ):
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            attempt()
    ftp.quit()


def test_path_traversal_refused(ftp_server: FTPLabServer, ftp_files: FTPFiles) -> None:
    outside = ftp_files.home.parent / "outside.txt"
    outside.write_text("secret")
    link = ftp_files.home / "escape"
    if not link.is_symlink():
        link.symlink_to(outside)
    ftp = ftplib.FTP()
    ftp.connect(*ftp_server.address, timeout=10)
    ftp.login("brandon", "abc123")
    ftp.cwd("../../..")  # clamps at the home: the root of this user's view
    assert ftp.pwd() == "/"
    for path in ("../outside.txt", "/../../outside.txt", "/etc/passwd", "escape"):
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.retrbinary(f"RETR {path}", lambda _: None)
    ftp.storbinary("STOR ../../planted.txt", io.BytesIO(b"x"))  # '..' clamps at the home
    assert not (ftp_files.home.parent / "planted.txt").exists()
    assert (ftp_files.home / "planted.txt").read_bytes() == b"x"
    ftp.quit()


def test_ftp_bounce_port_to_a_third_address_refused(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    # 127.0.0.2 is another address than the client's 127.0.0.1: a bounce target
    with pytest.raises(ftplib.error_perm, match=r"^501.*foreign"):
        ftp.sendcmd("PORT 127,0,0,2,39,16")
    with pytest.raises(ftplib.error_perm, match=r"^501"):
        ftp.sendcmd("EPRT |1|127.0.0.2|10000|")
    with pytest.raises(ftplib.error_perm, match=r"^501.*privileged"):
        ftp.sendcmd("PORT 127,0,0,1,0,25")
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()


def test_long_path_argument_gets_550(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.cwd("/" + "a" * MAX_PATH_CHARS)
    assert ftp.pwd() == "/"  # the replies stayed in step
    ftp.quit()


def test_symlink_loop_is_bounded_by_the_path_limit(ftp_server: FTPLabServer) -> None:
    ftp = _anon(ftp_server)
    path = LOOP_LINK
    depth = 0
    while True:
        try:
            ftp.cwd(path)
        except ftplib.error_perm:
            break
        path += "/loop"
        depth += 1
        assert depth < 400
    assert depth > 10
    ftp.quit()


def test_brute_force_logins_slowed_and_logged(
    make_server: Callable[..., FTPLabServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(login_failure_delay=0.4, max_login_attempts=2)
    ftp = ftplib.FTP()
    ftp.connect(*server.address, timeout=10)
    caplog.set_level(logging.WARNING, logger="wirelab.ftp")
    started = time.monotonic()
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        ftp.login("brandon", "wrong")
    assert time.monotonic() - started >= 0.35
    with pytest.raises((ftplib.error_perm, EOFError, OSError)):
        ftp.login("brandon", "wrong again")
    with pytest.raises((EOFError, OSError, ftplib.Error)):  # closed after the second failure
        ftp.sendcmd("NOOP")
    ftp.close()
    assert any("failed login for 'brandon'" in r.getMessage() for r in caplog.records)


def test_idle_timeout_closes_a_quiet_client(make_server: Callable[..., FTPLabServer]) -> None:
    server = make_server(idle_timeout=0.5)
    with socket.create_connection(server.address, timeout=10) as sock:
        started = time.monotonic()
        got = b""
        while chunk := sock.recv(4096):
            got += chunk
        assert time.monotonic() - started < 5
    assert got.startswith(b"220 ") and b"421" in got


def test_connection_cap_per_address_closes_the_idlest(
    make_server: Callable[..., FTPLabServer],
) -> None:
    server = make_server(max_connections_per_ip=2)
    quiet = socket.create_connection(server.address, timeout=10)
    busy = ftplib.FTP()
    try:
        assert quiet.recv(1024).startswith(b"220")
        busy.connect(*server.address, timeout=10)
        busy.login()
        newcomer = ftplib.FTP()
        newcomer.connect(*server.address, timeout=10)  # the third: served
        newcomer.login()
        assert newcomer.pwd() == "/"
        newcomer.quit()
        got = b""
        while chunk := quiet.recv(1024):  # the idlest (never sent a command) was closed
            got += chunk
        assert got.startswith(b"421")
        assert busy.pwd() == "/"  # the logged-in one kept its place
        busy.quit()
    finally:
        quiet.close()
        busy.close()


def test_connection_cap_overall(make_server: Callable[..., FTPLabServer]) -> None:
    server = make_server(max_connections=4, max_connections_per_ip=0)
    held = [socket.create_connection(server.address, timeout=10) for _ in range(6)]
    try:
        greetings = [sock.recv(1024) for sock in held]
        assert all(g.startswith(b"220") for g in greetings)
        open_now = 0
        for sock in held:
            sock.settimeout(0.3)
            try:
                if sock.recv(1024) == b"":
                    continue
            except TimeoutError:
                open_now += 1
                continue
            except ConnectionError:
                continue
        assert open_now <= 4
    finally:
        for sock in held:
            sock.close()


def test_explicit_ftps_with_the_lab_ca(ftp_server: FTPLabServer, ftp_files: FTPFiles) -> None:
    ftp = ftplib.FTP_TLS(context=_context(ftp_files))
    ftp.connect("localhost", ftp_server.address[1], timeout=10)
    ftp.login("brandon", "abc123")  # AUTH TLS first
    ftp.prot_p()
    ftp.storbinary("STOR tls-upload.bin", io.BytesIO(b"\0" * 70000))
    assert (ftp_files.home / "tls-upload.bin").stat().st_size == 70000
    assert isinstance(ftp.sock, ssl.SSLSocket)
    ftp.quit()


def test_require_tls_refuses_a_cleartext_login(
    make_server: Callable[..., FTPLabServer],
) -> None:
    server = make_server(require_tls=True)
    ftp = ftplib.FTP()
    ftp.connect(*server.address, timeout=10)
    with pytest.raises(ftplib.error_perm, match=r"^550.*SSL/TLS required"):
        ftp.login("brandon", "abc123")
    ftp.close()


def test_implicit_ftps(make_server: Callable[..., FTPLabServer], ftp_files: FTPFiles) -> None:
    server = make_server(implicit_tls=True)
    context = _context(ftp_files)
    with (
        socket.create_connection(server.address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="ftp.example.com") as tls,
    ):
        assert tls.recv(1024).startswith(b"220 ")
        tls.sendall(b"QUIT\r\n")
        assert tls.recv(1024).startswith(b"221")
    with socket.create_connection(server.address, timeout=10) as raw:  # cleartext: no banner
        raw.sendall(b"USER anonymous\r\n")
        raw.settimeout(3)
        with pytest.raises((ConnectionError, TimeoutError)):
            if not raw.recv(1024):
                raise ConnectionResetError


def test_two_servers_keep_their_own_settings(make_server: Callable[..., FTPLabServer]) -> None:
    first = make_server(banner="first server")
    second = make_server(banner="second server")
    for server, banner in ((first, "first server"), (second, "second server")):
        ftp = ftplib.FTP()
        assert banner in ftp.connect(*server.address, timeout=10)
        ftp.close()


def test_close_stops_the_thread_and_frees_the_port(
    make_server: Callable[..., FTPLabServer], tmp_path: Path
) -> None:
    server = make_server()
    address = server.address
    ftp = _anon(server)
    server.close()
    with pytest.raises((EOFError, OSError)):
        ftp.sendcmd("NOOP")
    ftp.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()


def test_stalled_data_connection_times_out(make_server: Callable[..., FTPLabServer]) -> None:
    server = make_server(data_timeout=0.5)
    ftp = ftplib.FTP()
    ftp.connect(*server.address, timeout=10)
    ftp.login("brandon", "abc123")
    ftp.voidcmd("TYPE I")
    started = time.monotonic()
    with ftp.transfercmd("STOR stalled.bin") as data:  # open the data connection, send nothing
        data.settimeout(5)
        assert data.recv(1) == b""  # the server closed it
    with pytest.raises(ftplib.error_temp, match=r"^42[16]"):
        ftp.voidresp()
    assert time.monotonic() - started < 4
    ftp.close()
