"""Dovecot as an independent POP3 and IMAP server for the chapter 14-15 interop tests.

:func:`dovecot_server` runs Dovecot (2.3) in the foreground from a configuration the test
writes, on free loopback ports, over a Maildir the test fills (the same layout as our
store's), with the lab certificate, and stops it by PID: never the system's Dovecot.
Plaintext logins are refused before TLS (``disable_plaintext_auth``), as on ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.ftp_peers import free_port, need


@dataclass
class Dovecot:
    """A running Dovecot: its ports and each user's Maildir."""

    pop3: int
    pop3s: int
    imap: int
    imaps: int
    mail: Path

    def maildir(self, user: str) -> Path:
        return self.mail / user / "Maildir"

    def deliver(self, user: str, name: str, data: bytes) -> None:
        """Put a message in ``user``'s ``new/`` the Maildir way (tmp, then rename)."""
        base = self.maildir(user)
        tmp = base / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, 65534, 65534)
        tmp.rename(base / "new" / f"{name},S={len(data)}")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dovecot exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("dovecot did not listen within 10 s")


@contextmanager
def dovecot_server(
    workdir: Path, cert: Path, key: Path, users: dict[str, str]
) -> Iterator[Dovecot]:
    """Dovecot serving POP3 (STLS, APOP) and IMAP (STARTTLS) plus their implicit-TLS ports."""
    binary = need("dovecot")
    for program, package in (("pop3", "dovecot-pop3d"), ("imap", "dovecot-imapd")):
        if not os.access(f"/usr/lib/dovecot/{program}", os.X_OK):
            message = f"{package} is not installed (apt-get install {package})"
            if os.environ.get("WIRELAB_REQUIRE_SERVICES", "") not in ("", "0"):
                pytest.fail(message)
            pytest.skip(message)
    if os.geteuid() != 0:
        pytest.skip("the test's Dovecot runs as root (it drops to its own users)")
    # not under pytest's base temp: every pytest run resets that to 0700, and Dovecot's
    # mail processes run as nobody
    workdir.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix="wirelab-dovecot-"))
    os.chmod(own, 0o755)
    try:
        with _dovecot(binary, own, cert, key, users) as server:
            yield server
    finally:
        for name in ("dovecot.log", "dovecot.stderr"):  # kept for a failing test's reader
            if (own / name).exists():
                shutil.copy(own / name, workdir / name)
        shutil.rmtree(own, ignore_errors=True)


@contextmanager
def _dovecot(
    binary: str, workdir: Path, cert: Path, key: Path, users: dict[str, str]
) -> Iterator[Dovecot]:
    ports = {name: free_port() for name in ("pop3", "pop3s", "imap", "imaps")}
    mail = workdir / "mail"
    for user in users:
        for sub in ("tmp", "new", "cur"):
            (mail / user / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    for path in [mail, *mail.rglob("*")]:
        os.chown(path, 65534, 65534)
    passwd = workdir / "passwd"
    passwd.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users.items()))
    shutil.copy(cert, workdir / "cert.pem")
    shutil.copy(key, workdir / "key.pem")
    log = workdir / "dovecot.log"
    config = workdir / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {log}
info_log_path = {log}
protocols = pop3 imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{workdir}/cert.pem
ssl_key = <{workdir}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login apop
first_valid_uid = 1
mail_location = maildir:{mail}/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={mail}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    )
    with open(workdir / "dovecot.stderr", "wb") as errors:
        proc = subprocess.Popen(
            [binary, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        for port in ports.values():
            _wait_port(port, proc, workdir / "dovecot.stderr")
        yield Dovecot(mail=mail, **ports)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
