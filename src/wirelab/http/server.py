"""WSGI servers for chapter 10: gunicorn as a child process, waitress and wsgiref in threads.

Every server here listens on a socket **we** bind first (so a port in use is one clear line,
and port 0 reports its real port), with a limit on every request line, header and connection:

* :class:`GunicornProcess` runs ``gunicorn`` (>= 23: its request-smuggling fixes) as a child
  process on that socket (``--bind fd://N``), gthread whose threads poll for requests by default
  (:mod:`wirelab.http.worker`; a client that trickles its headers holds one thread, never the
  others), TLS from the
  lab's certificate files through :mod:`wirelab.http.gunicorn_conf`. The child dies with the
  thread that started it (``PR_SET_PDEATHSIG``) and is stopped by PID, its workers with it.
* :func:`start_waitress` and :func:`start_wsgiref` run in a thread of this process
  (:class:`ThreadedServer`), for ``wirelab http serve --server waitress|wsgiref``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import wsgiref.simple_server
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from wirelab.errors import ConfigError, Timeout
from wirelab.net.addresses import format_address, listen_tcp

__all__ = [
    "DEFAULT_WORKER_CLASS",
    "GUNICORN_LIMITS",
    "SERVERS",
    "WORKER_CLASSES",
    "GunicornProcess",
    "ThreadedServer",
    "default_workers",
    "describe_exit",
    "probe_http",
    "start_waitress",
    "start_wsgiref",
]

log = logging.getLogger(__name__)

#: The servers ``wirelab http serve --server`` knows.
SERVERS = ("gunicorn", "waitress", "wsgiref")
#: gunicorn worker classes we run, by our name: gunicorn's own ``gthread`` and ``sync``, and
#: ``linger`` (the default), gthread whose threads poll for requests (:mod:`wirelab.http.worker`).
WORKER_CLASSES = {
    "linger": "wirelab.http.worker.LingerThreadWorker",
    "gthread": "gthread",
    "sync": "sync",
}
#: The worker ``http serve`` and the lab run (decision 0091: the benchmark chose it).
DEFAULT_WORKER_CLASS = "linger"
#: gunicorn's request limits, stated (these are its defaults; we pass them so they show).
GUNICORN_LIMITS = {
    "--limit-request-line": 4094,
    "--limit-request-fields": 100,
    "--limit-request-field_size": 8190,
}
#: Seconds a server has to answer its first request after it starts.
DEFAULT_START_TIMEOUT = 30.0
#: Seconds gunicorn's workers get to finish their requests on stop.
GRACEFUL_TIMEOUT = 2
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """gunicorn worker processes ``http serve`` starts: one per CPU it may run on, 1 to 8.

    One process runs Python on one core at a time (the GIL); a second worker on a second
    core is what lets gunicorn pass a single-process server under load (decision 0091).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def describe_exit(code: int) -> str:
    """``"killed by SIGKILL"`` or ``"exited with status 1"`` for a Popen return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when its parent thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def probe_http(
    address: tuple[str, int],
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    host_header: str = "127.0.0.1",
    path: str = "/",
    timeout: float = 2.0,
) -> bytes:
    """Send one ``GET`` and return the status line the server answered (``b""`` if none).

    Raises:
        OSError: the connection or the TLS handshake failed.
    """
    with socket.create_connection(address, timeout=timeout) as raw:
        sock: socket.socket = raw
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(raw, server_hostname=server_hostname)
        try:
            sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        finally:
            if sock is not raw:
                sock.close()
    return head.split(b"\r\n", 1)[0] if b"\r\n" in head else b""


class GunicornProcess:
    """``gunicorn APP`` as a child process on a socket we bound.

    Args:
        app: the WSGI application as gunicorn names it (``"httpbin:app"``,
            ``"wirelab.http.apps:time_raw"``).
        sock: the listening socket (bound and listening; kept open by us until :meth:`stop`).
        workers: worker processes (``-w``).
        worker_class: ``"linger"`` (default: gthread whose threads poll for requests),
            ``"gthread"`` or ``"sync"`` (the book's).
        threads: threads per gthread worker.
        certfile, keyfile: serve HTTPS with this certificate chain and key (PEM files).
        wirelog: print every byte each connection reads and writes (the book's config.py).
        logfile: where gunicorn's own messages go (default: a temporary file).
        forwarded_allow_ips: proxies whose ``X-Forwarded-*`` headers gunicorn believes
            (default: nobody; never ``*``). The lab's front is ``127.0.0.1``.
    """

    def __init__(
        self,
        app: str,
        sock: socket.socket,
        *,
        workers: int = 1,
        worker_class: str = DEFAULT_WORKER_CLASS,
        threads: int = 8,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        wirelog: bool = False,
        logfile: Path | None = None,
        forwarded_allow_ips: str = "",
        access_log: bool = False,
    ) -> None:
        if worker_class not in WORKER_CLASSES:
            raise ConfigError(f"unknown gunicorn worker class {worker_class!r}")
        if not 1 <= workers <= 64 or not 1 <= threads <= 256:
            raise ConfigError("gunicorn needs 1-64 workers and 1-256 threads")
        if (certfile is None) != (keyfile is None):
            raise ConfigError("HTTPS needs both a certificate file and a key file")
        self.app = app
        self.sock = sock
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.certfile = certfile
        self.keyfile = keyfile
        self.wirelog = wirelog
        self.logfile = logfile
        self.forwarded_allow_ips = forwarded_allow_ips
        self.access_log = access_log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` it listens on."""
        host, port = self.sock.getsockname()[:2]
        return host, port

    @property
    def tls(self) -> bool:
        """True when it serves HTTPS."""
        return self.certfile is not None

    @property
    def pid(self) -> int:
        """The gunicorn master's process ID."""
        if self.process is None:
            raise ConfigError("gunicorn is not running")
        return self.process.pid

    def __str__(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"gunicorn {self.app} at {scheme}://{format_address(self.address)}"

    def command(self) -> list[str]:
        """The command line of the child."""
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:wirelab.http.gunicorn_conf",
            "--bind",
            f"fd://{self.sock.fileno()}",
            "--workers",
            str(self.workers),
            "--worker-class",
            WORKER_CLASSES[self.worker_class],
            "--threads",
            str(self.threads),
            "--graceful-timeout",
            str(GRACEFUL_TIMEOUT),
            "--timeout",
            "30",
            "--keep-alive",
            "5",
            "--no-control-socket",
            "--log-level",
            "warning",
        ]
        for flag, value in GUNICORN_LIMITS.items():
            args += [flag, str(value)]
        if self.forwarded_allow_ips:
            args += ["--forwarded-allow-ips", self.forwarded_allow_ips]
        if self.access_log:
            args += ["--access-logfile", "-"]
        args.append(self.app)
        return args

    def environment(self) -> dict[str, str]:
        """The child's environment: ours plus the settings :mod:`gunicorn_conf` reads."""
        env = dict(os.environ)
        for key in ("WIRELAB_HTTP_CERT", "WIRELAB_HTTP_KEY", "WIRELAB_HTTP_WIRELOG"):
            env.pop(key, None)
        if self.certfile is not None and self.keyfile is not None:
            env["WIRELAB_HTTP_CERT"] = os.fspath(self.certfile)
            env["WIRELAB_HTTP_KEY"] = os.fspath(self.keyfile)
        if self.wirelog:
            env["WIRELAB_HTTP_WIRELOG"] = "1"
        if not self.forwarded_allow_ips:
            env["FORWARDED_ALLOW_IPS"] = ""  # an empty list: nobody's X-Forwarded-* is believed
        return env

    def spawn(self, *, inherit: bool = False) -> None:
        """Start the child (returns at once; :meth:`poll_ready` tells when it answers).

        Args:
            inherit: the child writes to our standard output and error (``http serve``)
                instead of its log file.
        """
        if self.process is not None:
            raise ConfigError(f"{self} is already running")
        if not inherit and self._log is None:
            if self.logfile is not None:
                self.logfile.parent.mkdir(parents=True, exist_ok=True)
                self._log = open(self.logfile, "ab")  # noqa: SIM115 - kept until stop()
            else:
                self._log = tempfile.TemporaryFile()  # noqa: SIM115 - kept until stop()
        out = None if inherit else self._log
        self.process = subprocess.Popen(  # noqa: S603 - our arguments, no shell
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(self.sock.fileno(),),
            env=self.environment(),
            preexec_fn=_die_with_parent(),
        )
        log.info("started %s (pid %d)", self, self.process.pid)

    def poll_ready(self, ssl_context: ssl.SSLContext | None = None, hostname: str = "") -> bool:
        """True once gunicorn answers an HTTP request; False while it is still booting.

        Raises:
            ConfigError: the child exited (with the last lines of its log).
        """
        if self.process is None:
            raise ConfigError("gunicorn was not started")
        code = self.process.poll()
        if code is not None:
            self.process = None
            raise ConfigError(f"gunicorn {describe_exit(code)}: {self.log_tail() or 'no message'}")
        try:
            line = probe_http(
                self.address,
                ssl_context=ssl_context if self.tls else None,
                server_hostname=hostname or None,
                host_header=hostname or "127.0.0.1",
                timeout=1.0,
            )
        except OSError:
            return False
        return line.startswith(b"HTTP/1.")

    def wait_ready(
        self,
        ssl_context: ssl.SSLContext | None = None,
        hostname: str = "",
        timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        """Block until gunicorn answers, or raise :class:`Timeout` (and stop it)."""
        deadline = time.monotonic() + timeout
        while not self.poll_ready(ssl_context, hostname):
            if time.monotonic() > deadline:
                self.stop()
                raise Timeout(f"{self} did not answer within {timeout:g} s")
            time.sleep(0.1)

    def log_tail(self, limit: int = 600) -> str:
        """The last ``limit`` characters gunicorn wrote, on one line."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return " ".join(text.split())[-limit:]

    def poll(self) -> int | None:
        """The child's exit status once it has exited (and reaped), else ``None``."""
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        """Ask gunicorn to stop (SIGTERM: its workers finish their requests, then exit)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def stop(self, timeout: float = GRACEFUL_TIMEOUT + 3.0) -> None:
        """Stop the child by PID (SIGKILL after ``timeout``), reap it, close our log."""
        if self.process is not None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %g s: killing it", self, timeout)
                self.process.kill()
                self.process.wait(5.0)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the child and close the listening socket."""
        self.stop()
        self.sock.close()

    def __enter__(self) -> GunicornProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ThreadedServer:
    """A blocking WSGI server serving in a daemon thread of this process.

    Args:
        serve: serves until ``shutdown`` is called.
        shutdown: makes ``serve`` return (from another thread).
        sock: its listening socket (closed by :meth:`close`).
        name: what it is, for messages.
    """

    def __init__(
        self,
        serve: Callable[[], object],
        shutdown: Callable[[], object],
        sock: socket.socket,
        name: str,
    ) -> None:
        self.sock = sock
        self.name = name
        self._shutdown = shutdown
        self._thread = threading.Thread(target=serve, name=f"wirelab-http:{name}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` it listens on."""
        host, port = self.sock.getsockname()[:2]
        return host, port

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, wait for the thread, close the socket."""
        self._shutdown()
        self._thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _BoundedHandler(wsgiref.simple_server.WSGIRequestHandler):
    """wsgiref's handler with a read timeout, and its log lines through ``logging``."""

    timeout = 10.0  # a client that trickles its request is closed after 10 s of silence

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _ThreadingWSGIServer(wsgiref.simple_server.WSGIServer):
    """wsgiref's server, one thread per connection (a slow client stalls nobody else)."""

    daemon_threads = True
    block_on_close = False

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), daemon=True
        )
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.warning("wsgiref: a request from %s failed", client_address[0], exc_info=False)
        finally:
            self.shutdown_request(request)


def start_wsgiref(app: Callable[..., Any], sock: socket.socket) -> ThreadedServer:
    """Serve ``app`` with the standard library's ``wsgiref`` on ``sock`` (in a thread).

    wsgiref is the book's ``wsgi_env.py`` server: a reference implementation, HTTP/1.0
    answers (it closes every connection), fine for learning, not for the internet.
    """
    server = _ThreadingWSGIServer(sock.getsockname()[:2], _BoundedHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()[:2]
    server.server_name = "localhost"
    server.server_port = server.server_address[1]
    server.setup_environ()
    server.set_app(app)
    return ThreadedServer(lambda: server.serve_forever(0.2), server.shutdown, sock, "wsgiref")


def start_waitress(
    app: Callable[..., Any], sock: socket.socket, threads: int = 4
) -> ThreadedServer:
    """Serve ``app`` with waitress on ``sock`` (its own asyncore loop in a thread)."""
    from waitress.server import create_server

    server = create_server(
        app,
        sockets=[sock],
        threads=threads,
        channel_timeout=30,
        max_request_header_size=16384,
        max_request_body_size=10 * 1024 * 1024,
        connection_limit=1000,  # as gunicorn's worker_connections
        clear_untrusted_proxy_headers=True,
        ident="waitress",
    )

    def shutdown() -> None:
        from waitress import wasyncore

        server.task_dispatcher.shutdown()  # joins its worker threads
        # Closing every channel empties the map, and the loop in serve() returns.
        wasyncore.close_all(getattr(server, "_map", None) or getattr(server, "map", None))

    def serve() -> None:
        with contextlib.suppress(OSError, ValueError):  # the map closed under select
            server.run()

    return ThreadedServer(serve, shutdown, sock, "waitress")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (ConnectError / NameResolutionError on failure)."""
    return listen_tcp(host, port, backlog=1024)
