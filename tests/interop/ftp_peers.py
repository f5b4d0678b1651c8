"""Independent FTP peers for the chapter 17 interop tests: curl, lftp and vsftpd.

:func:`need` finds a tool or skips the test, unless ``WIRELAB_REQUIRE_SERVICES=1`` (CI, where
``scripts/install-system-deps.sh`` installed them) makes a missing tool a failure.
:func:`vsftpd_server` runs vsftpd from a configuration the test writes, on a free loopback
port, in the foreground, and stops it by PID (never the system's vsftpd).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def need(tool: str) -> str:
    """The path of ``tool``, or skip (fail under ``WIRELAB_REQUIRE_SERVICES``)."""
    found = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    message = f"{tool} is not installed (apt-get install {tool})"
    if os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def vsftpd_server(
    workdir: Path, anon_root: Path, cert: Path, key: Path
) -> Iterator[tuple[str, int]]:
    """vsftpd serving ``anon_root`` anonymously (read, and uploads into ``incoming/``), with
    explicit FTPS offered (not forced) using the lab certificate. Yields ``(host, port)``."""
    binary = need("vsftpd")
    if os.geteuid() != 0:
        pytest.skip("vsftpd needs root for its chroot")
    port = free_port()
    empty = workdir / "vsftpd-empty"
    empty.mkdir(mode=0o755, exist_ok=True)
    log = workdir / "vsftpd.log"
    config = workdir / "vsftpd.conf"
    config.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                "listen_address=127.0.0.1",
                f"listen_port={port}",
                "background=NO",
                "anonymous_enable=YES",
                "local_enable=NO",
                f"anon_root={anon_root}",
                "no_anon_password=YES",
                "write_enable=YES",
                "anon_upload_enable=YES",
                "anon_mkdir_write_enable=YES",
                "anon_umask=022",
                "pasv_enable=YES",
                "seccomp_sandbox=NO",
                f"secure_chroot_dir={empty}",
                "ftp_username=ftp",
                "nopriv_user=ftp",
                "ssl_enable=YES",
                "allow_anon_ssl=YES",
                "force_anon_data_ssl=NO",
                "force_anon_logins_ssl=NO",
                "require_ssl_reuse=NO",
                f"rsa_cert_file={cert}",
                f"rsa_private_key_file={key}",
                "xferlog_enable=YES",
                f"vsftpd_log_file={log}",
                "dual_log_enable=YES",
                "idle_session_timeout=30",
                "data_connection_timeout=30",
                "",
            ]
        )
    )
    process = subprocess.Popen(
        [binary, str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    if probe.recv(100).startswith(b"220"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate(timeout=5)
                raise AssertionError(f"vsftpd did not start: {out!r} {err!r}")
            time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
