"""nginx as a child process: chapter 10's reverse proxy in front of gunicorn, or a fixed answer.

:class:`NginxProcess` writes a configuration into a private directory and runs
``nginx -p DIR -c nginx.conf`` in the foreground (``daemon off``), as a child that dies with
the thread that started it and is stopped by PID (``SIGQUIT``: finish the requests in
flight, then ``SIGKILL`` if it takes too long). Two modes:

* ``backend=(host, port)``: a buffering reverse proxy (``proxy_request_buffering on``), with a
  head deadline and size limits, that sets ``X-Forwarded-For`` and ``X-Forwarded-Proto`` and
  keeps a small pool of kept-alive connections to gunicorn;
* ``backend=None``: ``return 200`` of a fixed body, the ceiling of this machine for the
  benchmark.

nginx binds its port itself; for port 0 we find a free one first (and retry once if another
process takes it in between).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from wirelab.errors import ConfigError, ServiceUnavailable, Timeout
from wirelab.http.server import probe_http

__all__ = ["INSTALL_HINT", "NginxProcess", "nginx_binary"]

INSTALL_HINT = "nginx is not installed (install it with: apt-get install nginx)"
_PR_SET_PDEATHSIG = 1


def nginx_binary() -> str:
    """The nginx executable.

    Raises:
        ServiceUnavailable: it is not installed (the message says how to install it).
    """
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise ServiceUnavailable(INSTALL_HINT)
    return found


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


class NginxProcess:
    """nginx on ``host:port``, proxying to ``backend`` (or answering a fixed body).

    Args:
        host: address to listen on.
        port: port, or 0 for a free one.
        backend: ``(host, port)`` of the WSGI server, or ``None`` for the fixed answer.
        workers: nginx worker processes.
    """

    def __init__(
        self,
        host: str,
        port: int,
        backend: tuple[str, int] | None,
        *,
        workers: int = 1,
    ) -> None:
        self.binary = nginx_binary()
        self.host = host
        self.requested_port = port
        self.port = port
        self.backend = backend
        self.workers = workers
        self._dir = Path(tempfile.mkdtemp(prefix="wirelab-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` it listens on."""
        return (self.host, self.port)

    def config(self) -> str:
        """The nginx.conf text."""
        listen = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        temp = "\n".join(
            f"    {kind}_temp_path {self._dir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        if self.backend is None:
            location = '        return 200 "fixed\\n";\n        default_type text/plain;'
            upstream = ""
        else:
            bhost, bport = self.backend
            upstream = (
                f"    upstream wsgi {{\n        server {bhost}:{bport};\n"
                "        keepalive 16;\n    }"
            )
            location = "\n".join(
                [
                    "        proxy_pass http://wsgi;",
                    "        proxy_http_version 1.1;",
                    '        proxy_set_header Connection "";',
                    "        proxy_set_header Host $http_host;",
                    "        proxy_set_header X-Forwarded-For $remote_addr;",
                    "        proxy_set_header X-Forwarded-Proto $scheme;",
                    "        proxy_request_buffering on;",
                    "        proxy_buffering on;",
                    "        proxy_read_timeout 60s;",
                ]
            )
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        return f"""{user}daemon off;
master_process on;
worker_processes {self.workers};
pid {self._dir / "nginx.pid"};
error_log {self._dir / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    server_tokens off;
{temp}
    client_header_timeout 10s;
    client_body_timeout 30s;
    client_max_body_size 10m;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    send_timeout 30s;
    keepalive_timeout 5s;
    keepalive_requests 1000;
{upstream}
    server {{
        listen {listen} backlog=1024;
        location / {{
{location}
        }}
    }}
}}
"""

    def start(self, timeout: float = 10.0) -> None:
        """Write the configuration, start nginx, and wait until it answers.

        Raises:
            ConfigError: nginx refused its configuration or could not listen.
            Timeout: it did not answer in time.
        """
        for attempt in range(2):
            if self.requested_port == 0:
                self.port = _free_port(self.host)
            self._spawn()
            try:
                self._wait(timeout)
                return
            except ConfigError:
                if attempt == 1 or self.requested_port != 0:
                    raise

    def _spawn(self) -> None:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self._dir / kind).mkdir(exist_ok=True)
            if os.geteuid() == 0:
                with contextlib.suppress(KeyError, OSError):
                    nobody = pwd.getpwnam("nobody")
                    os.chown(self._dir / kind, nobody.pw_uid, nobody.pw_gid)
        conf = self._dir / "nginx.conf"
        conf.write_text(self.config())
        os.chmod(self._dir, 0o755)  # noqa: S103 - nginx's workers (nobody) reach their temp dirs
        self.process = subprocess.Popen(  # noqa: S603 - our arguments, no shell
            [self.binary, "-p", str(self._dir), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(),
        )

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None:
                raise ConfigError("nginx was not started")
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ConfigError(f"nginx exited with status {code}: {self.log_tail()}")
            try:
                if probe_http(self.address, timeout=1.0).startswith(b"HTTP/1."):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise Timeout(f"nginx on {self.host}:{self.port} did not answer in {timeout:g} s")
            time.sleep(0.05)

    def log_tail(self, limit: int = 400) -> str:
        """The end of nginx's error log, on one line."""
        try:
            text = (self._dir / "error.log").read_text(errors="replace")
        except OSError:
            return "no message"
        return " ".join(text.split())[-limit:] or "no message"

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop (SIGQUIT), SIGKILL after ``timeout``; reap it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)
            self.process = None

    def close(self) -> None:
        """Stop nginx and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NginxProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
