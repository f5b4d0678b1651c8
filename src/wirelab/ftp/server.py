"""The lab FTP host (``ftp.example.com``): pyftpdlib behind the lab's service contract.

pyftpdlib is a blocking, single-threaded event loop with its configuration on class
attributes. Each :class:`FTPLabServer` therefore builds **its own handler classes** from a
frozen :class:`FTPSettings` (so two servers in one process never share a setting), runs **its
own IOLoop** (never the library's global instance) in one thread, and stops it from any
thread: the loop polls at most :data:`POLL_SECONDS` at a time and checks a stop flag.

What it serves (see :mod:`wirelab.ftp.seed`): an anonymous, read-only tree with the book's
paths; accounts whose uploads stay inside their home; explicit FTPS (``AUTH TLS``, ``PBSZ 0``,
``PROT P``) on the main port when a certificate is given, optional so the book's plain-FTP
scripts keep working (``require_tls`` makes it mandatory); and implicit FTPS (TLS from the
first byte) on a second server with ``implicit_tls``.

Limits: connections overall and per address, an idle timeout on the control connection and
a timeout on a stalled data connection, 3 logins per connection each failure answered only
after a delay (and logged), a 1024-character path argument, PORT/EPRT only to the client's
own address and an unprivileged port (no FTP bounce), passive ports from a fixed range when
configured. Paths resolve inside the user's root: ``..``, absolute paths and symbolic links
that lead out of it are refused by pyftpdlib's ``validpath`` (a ``realpath`` check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirelab.errors import ConfigError, ConnectError
from wirelab.net.addresses import listen_tcp

__all__ = [
    "MAX_PATH_CHARS",
    "POLL_SECONDS",
    "FTPAccount",
    "FTPLabServer",
    "FTPSettings",
    "open_ftp_server",
    "start_ftp_server",
]

log = logging.getLogger("wirelab.ftp")

#: The longest argument (a path) a command may carry; longer gets 550, not a half-read line.
MAX_PATH_CHARS = 1024

#: How long the server thread's loop waits for I/O before it looks at its stop flag.
POLL_SECONDS = 0.1

#: Bytes per read and write on a data connection (and per file read of a download that
#: cannot use sendfile: TLS or ASCII). pyftpdlib's default is 64 KiB.
DATA_BUFFER = 256 * 1024

#: The most one sendfile() call may send (pyftpdlib's default is 64 KiB per loop turn).
SENDFILE_CHUNK = 4 * 1024 * 1024

#: Permissions in pyftpdlib's letters: anonymous may list and read; an account everything.
ANONYMOUS_PERM = "elr"
ACCOUNT_PERM = "elradfmwMT"

_logging_ready = threading.Lock()


def _quiet_library_logging() -> None:
    """Give pyftpdlib's logger a null handler, so it never installs its own stderr handler
    (it does when it finds no handler); its records still reach ours through the root."""
    with _logging_ready:
        library = logging.getLogger("pyftpdlib")
        if not any(isinstance(h, logging.NullHandler) for h in library.handlers):
            library.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class FTPAccount:
    """A login and the directory it is confined to."""

    user: str
    password: str
    home: Path
    perm: str = ACCOUNT_PERM


@dataclass(frozen=True)
class FTPSettings:
    """Everything one FTP server needs; nothing of it is shared with another server.

    Attributes:
        anonymous_root: the tree anonymous users read (``None``: no anonymous login).
        accounts: logins with their homes.
        cert_file: PEM certificate chain for FTPS (``None``: plain FTP only).
        key_file: its private key.
        implicit_tls: TLS from the first byte (the implicit-FTPS port), not ``AUTH TLS``.
        require_tls: refuse USER/PASS before ``AUTH TLS`` and data before ``PROT P``.
        passive_ports: ``(first, last)`` port range for PASV/EPSV (``None``: any free port).
        max_connections: connections at once, data connections included.
        max_connections_per_ip: control connections from one address.
        idle_timeout: seconds a control connection may send no command.
        data_timeout: seconds a data connection may move no byte.
        max_login_attempts: failed logins before the connection is closed.
        login_failure_delay: seconds before a failed login is answered (slows guessing).
        banner: the text of the 220 greeting.
    """

    anonymous_root: Path | None = None
    accounts: tuple[FTPAccount, ...] = ()
    cert_file: Path | None = None
    key_file: Path | None = None
    implicit_tls: bool = False
    require_tls: bool = False
    passive_ports: tuple[int, int] | None = None
    max_connections: int = 128
    max_connections_per_ip: int = 16
    idle_timeout: float = 300.0
    data_timeout: float = 60.0
    max_login_attempts: int = 3
    login_failure_delay: float = 1.0
    banner: str = "wirelab FTP server (ftp.example.com) ready."

    def __post_init__(self) -> None:
        if (self.implicit_tls or self.require_tls) and self.cert_file is None:
            raise ConfigError("FTPS needs a certificate (cert_file)")
        if self.passive_ports is not None:
            first, last = self.passive_ports
            if not 1024 <= first <= last <= 65535:
                raise ConfigError(f"passive ports {first}-{last} are not a range in 1024-65535")
        for name in ("idle_timeout", "data_timeout", "login_failure_delay"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name} must be above zero, not {value}")
        if self.anonymous_root is None and not self.accounts:
            raise ConfigError("an FTP server needs anonymous_root or at least one account")


def _openssl_context(cert_file: Path, key_file: Path | None) -> Any:
    """A pyOpenSSL server context (what pyftpdlib's TLS handler wants): TLS 1.2 or newer."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    context.use_certificate_chain_file(str(cert_file))
    context.use_privatekey_file(str(key_file or cert_file))
    context.check_privatekey()
    return context


def _handler_class(settings: FTPSettings) -> type[Any]:
    """Build this server's own handler class (pyftpdlib configures through class attributes)."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler

    authorizer = DummyAuthorizer()
    if settings.anonymous_root is not None:
        authorizer.add_anonymous(str(settings.anonymous_root), perm=ANONYMOUS_PERM)
    for account in settings.accounts:
        authorizer.add_user(account.user, account.password, str(account.home), perm=account.perm)

    tls = settings.cert_file is not None
    if tls:
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

        base: type[Any] = TLS_FTPHandler
        dtp_base: type[Any] = TLS_DTPHandler
    else:
        base, dtp_base = FTPHandler, DTPHandler

    dtp = type(
        "LabDTPHandler",
        (dtp_base,),
        {
            "timeout": settings.data_timeout,
            # 64 KiB by default: one recv per loop turn capped uploads well below vsftpd's
            "ac_in_buffer_size": DATA_BUFFER,
            # also sendfile()'s count per loop turn: the kernel sends what the socket takes
            "ac_out_buffer_size": SENDFILE_CHUNK,
        },
    )
    fs = type("LabFS", (AbstractedFS,), {})
    attrs: dict[str, Any] = {
        "authorizer": authorizer,
        "banner": settings.banner,
        "timeout": settings.idle_timeout,
        "max_login_attempts": settings.max_login_attempts,
        "auth_failed_timeout": settings.login_failure_delay,
        "permit_foreign_addresses": False,
        "permit_privileged_ports": False,
        "masquerade_address": None,
        "masquerade_address_map": {},
        "passive_ports": (
            list(range(settings.passive_ports[0], settings.passive_ports[1] + 1))
            if settings.passive_ports
            else None
        ),
        "dtp_handler": dtp,
        "abstracted_fs": fs,
        "use_sendfile": True,
        "implicit_tls": settings.implicit_tls,
    }
    if tls:
        assert settings.cert_file is not None
        attrs["ssl_context"] = _openssl_context(settings.cert_file, settings.key_file)
        attrs["certfile"] = str(settings.cert_file)
        attrs["tls_control_required"] = settings.require_tls or settings.implicit_tls
        attrs["tls_data_required"] = settings.require_tls
    return type("LabFTPHandler", (_LabHandlerMixin, base), attrs)


class _LabHandlerMixin:
    """What the lab adds to pyftpdlib's handler: the path limit, login logging, implicit TLS."""

    implicit_tls = False

    #: When the last complete command arrived (the connection's start until one does).
    last_command = 0.0

    def handle(self) -> None:
        self.last_command = time.monotonic()
        if self.implicit_tls:  # the greeting waits for the handshake (handle_ssl_established)
            self.secure_connection(self.ssl_context)  # type: ignore[attr-defined]
            return
        super().handle()  # type: ignore[misc]

    def handle_ssl_established(self) -> None:
        if self.implicit_tls and not getattr(self, "_greeted", False):
            self._greeted = True
            super().handle()  # type: ignore[misc]

    def log_exception(self, instance: Any) -> None:
        """A peer's TLS or socket error is one line; anything else keeps its traceback."""
        error = sys.exc_info()[1]
        from OpenSSL import SSL

        if isinstance(error, SSL.Error | OSError | EOFError):
            log.info(
                "ftp: %s closed after %s: %s",
                getattr(self, "remote_ip", "?"),
                type(error).__name__,
                error,
            )
            return
        super().log_exception(instance)  # type: ignore[misc]

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        self.last_command = time.monotonic()
        if len(arg) > MAX_PATH_CHARS and cmd.upper() != "PASS":
            self.respond(f"550 Argument too long (the limit is {MAX_PATH_CHARS} characters).")  # type: ignore[attr-defined]
            return
        super().pre_process_command(line, cmd, arg)  # type: ignore[misc]

    def push_dtp_data(
        self, data: Any, isproducer: bool = False, file: Any = None, cmd: str | None = None
    ) -> None:
        """Announce a RETR as vsftpd (the book's server) does, with the size in the 150 reply:
        ``150 Opening BINARY mode data connection for NAME (N bytes).``, which ftplib's
        ``ntransfercmd`` returns as the expected size (the book's ``advbinarydl.py``)."""
        if isproducer and hasattr(data, "buffer_size"):
            data.buffer_size = DATA_BUFFER  # this producer only, not the library's class
        if cmd != "RETR" or file is None:
            super().push_dtp_data(data, isproducer, file, cmd)  # type: ignore[misc]
            return
        try:
            left = os.fstat(file.fileno()).st_size - file.tell()
        except (OSError, ValueError):
            super().push_dtp_data(data, isproducer, file, cmd)  # type: ignore[misc]
            return
        mode = "BINARY" if getattr(self, "_current_type", "a") == "i" else "ASCII"
        name = os.path.basename(getattr(file, "name", "") or "file")
        self.respond(f"150 Opening {mode} mode data connection for {name} ({left} bytes).")  # type: ignore[attr-defined]
        channel = self.data_channel  # type: ignore[attr-defined]
        if channel is None:  # sent once the client connects (pyftpdlib's queue)
            self._out_dtp_queue = (data, isproducer, file, cmd)
            return
        channel.file_obj = file
        try:
            channel.push_with_producer(data) if isproducer else channel.push(data)
            if self.data_channel is not None:  # type: ignore[attr-defined]
                channel.cmd = cmd
                channel.close_when_done()
        except Exception:
            channel.handle_error()

    def on_login_failed(self, username: str, password: str) -> None:
        log.warning(
            "ftp: failed login for %r from %s", username[:64], getattr(self, "remote_ip", "?")
        )


class _EvictingServerMixin:
    """At a connection cap, close the idlest control connection instead of refusing the
    newcomer (what the lab's other servers do): a slowloris that holds every slot cannot
    keep a normal client out, and the caps are never exceeded.

    The idlest is the one whose last complete command is oldest, preferring connections
    that have not logged in and have no transfer running. Unknown sockets are never touched.
    """

    _last_warning = 0.0

    def handle_accepted(self, sock: socket.socket, addr: Any) -> Any:
        ip = addr[0] if addr else None
        per_ip = getattr(self, "max_cons_per_ip", 0)
        if per_ip and ip is not None and self.ip_map.count(ip) >= per_ip:  # type: ignore[attr-defined]
            self._evict(lambda handler: handler.remote_ip == ip, f"per-address cap {per_ip}")
        overall = getattr(self, "max_cons", 0)
        if overall and self._map_len() >= overall:  # type: ignore[attr-defined]
            self._evict(lambda handler: True, f"cap {overall}")
        return super().handle_accepted(sock, addr)  # type: ignore[misc]

    def _evict(self, match: Any, why: str) -> None:
        handler_class = self.handler  # type: ignore[attr-defined]
        candidates = [
            h
            for h in list(self.ioloop.socket_map.values())  # type: ignore[attr-defined]
            if isinstance(h, handler_class) and not getattr(h, "_closed", True) and match(h)
        ]
        if not candidates:
            return
        victim = min(
            candidates,
            key=lambda h: (h.data_channel is not None, bool(h.authenticated), h.last_command),
        )
        now = time.monotonic()
        if now - self._last_warning > 1.0:
            self._last_warning = now
            log.warning(
                "ftp: at the %s: closing the idlest connection (%s)",
                why,
                getattr(victim, "remote_ip", "?"),
            )
        with contextlib.suppress(Exception):
            victim.respond("421 Too many connections; closing the idlest.")
        victim.close()


class FTPLabServer:
    """One pyftpdlib server on its own IOLoop in its own thread.

    Bind with :func:`start_ftp_server` (or :func:`open_ftp_server` in an event loop); stop
    with :meth:`close` (or ``async`` :meth:`aclose`): every connection, data socket and the
    listener are closed and the thread is joined.
    """

    def __init__(
        self, sock: socket.socket, settings: FTPSettings, *, thread_name: str = "wirelab-ftp"
    ) -> None:
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        _quiet_library_logging()
        self.settings = settings
        self.socket = sock
        self._stop = threading.Event()
        self._ioloop = IOLoop()  # our own, never IOLoop.instance()
        handler = _handler_class(settings)
        server_class = type(
            "LabFTPServer",
            (_EvictingServerMixin, FTPServer),
            {
                "max_cons": settings.max_connections,
                "max_cons_per_ip": settings.max_connections_per_ip,
            },
        )
        self._server = server_class(sock, handler, ioloop=self._ioloop, backlog=128)
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the control connection listens on."""
        host, port = self.socket.getsockname()[:2]
        return host, port

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._ioloop.loop(timeout=POLL_SECONDS, blocking=False)
        except Exception:  # a bug in the loop: log it once, then close everything
            log.exception("ftp: the server loop failed")
        finally:
            self._ioloop.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving, close every socket and join the thread."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    async def aclose(self) -> None:
        """:meth:`close` from an event loop (the join runs in a worker thread)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> FTPLabServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_ftp_server(
    host: str,
    port: int,
    settings: FTPSettings,
    *,
    thread_name: str = "wirelab-ftp",
) -> FTPLabServer:
    """Bind ``host:port`` and start serving in a thread.

    Raises:
        ConnectError: the address could not be bound.
        ConfigError: the settings (a certificate that does not load ...).
    """
    sock = listen_tcp(host, port, backlog=128)
    try:
        return FTPLabServer(sock, settings, thread_name=thread_name)
    except Exception as exc:
        sock.close()
        if isinstance(exc, ConfigError | ConnectError):
            raise
        raise ConfigError(f"cannot start the FTP server: {exc}") from exc


async def open_ftp_server(
    host: str, port: int, settings: FTPSettings, *, thread_name: str = "wirelab-ftp"
) -> FTPLabServer:
    """:func:`start_ftp_server` for event loops (and ``run_server``)."""
    return start_ftp_server(host, port, settings, thread_name=thread_name)
