"""``wirelab http get|headers|raw|serve`` (chapters 9 and 10): HTTP clients and WSGI servers."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import ssl
import sys
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    bind_port,
    console,
    count_option,
    err_console,
    print_json,
)
from wirelab.errors import ConfigError

if TYPE_CHECKING:
    from wirelab.http.client import Exchange
    from wirelab.http.server import GunicornProcess

__all__ = ["app"]

app = typer.Typer(
    name="http",
    help="Chapters 9-10: HTTP clients (requests, urllib, h11 on a socket) and WSGI servers.",
    no_args_is_help=True,
)

UrlArgument = Annotated[
    str,
    typer.Argument(help="http:// or https:// URL; www.example.com without a port is the lab's."),
]
VerboseOption = Annotated[
    bool,
    typer.Option("-v", "--verbose", help="Show the wire: request, response head, framing."),
]
CafileOption = Annotated[
    Path | None,
    typer.Option(
        "--cacert",
        help="Trust only these CAs (PEM). Default: the lab CA for lab names, else the system's.",
        exists=True,
        dir_okay=False,
    ),
]


def _err(text: str) -> None:
    err_console.print(text, markup=False)


def _show_wire(exchange: Exchange) -> None:
    head, _, body = exchange.request.partition(b"\r\n\r\n")
    for line in [*head.decode("latin-1").split("\r\n"), ""]:
        _err(f"> {line}")
    if body:
        _err(f"> ({len(body)} bytes of body)")
    for line in exchange.head.split("\r\n"):
        _err(f"< {line}")
    _err(
        f"* body: {len(exchange.body)} bytes, delimited by {exchange.framing}"
        f" (connection {exchange.connection})"
    )


@app.command()
def get(
    urls: Annotated[list[str], typer.Argument(help="URLs, fetched in order on one session.")],
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Do not follow redirects: show the 3xx itself.")
    ] = False,
    include: Annotated[
        bool, typer.Option("--include", help="Print the status line and headers before the body.")
    ] = False,
    user: Annotated[
        str | None, typer.Option("-u", "--user", help="Send HTTP Basic credentials for USER.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="WIRELAB_HTTP_PASSWORD",
            help="The password for --user (or $WIRELAB_HTTP_PASSWORD; asked when missing).",
        ),
    ] = None,
    count: Annotated[int, count_option("Fetch the URLs this many times over (reuse).")] = 1,
    cacert: CafileOption = None,
    verbose: VerboseOption = False,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """GET URLs with requests on one session: redirects, cookies, auth, connection reuse.

    The body goes to standard output; redirects, the connection count and (with -v) the
    wire go to standard error. A status of 400 or more prints the status line and headers
    and exits 1.
    """
    from wirelab.http.client import HTTPClient, HTTPStatusError, lab_url
    from wirelab.net.tlsctx import client_context

    auth = None
    if user is not None:
        if password is None:
            password = typer.prompt(f"password for {user}", hide_input=True)
        auth = (user, password)
    context = client_context(cafile=cacert) if cacert is not None else None
    exchanges: list[Exchange] = []
    with HTTPClient(timeout=timeout, ssl_context=context, auth=auth) as client:
        for _ in range(count):
            for url in urls:
                try:
                    exchange = client.get(lab_url(url), follow=not no_follow, raise_for_status=True)
                except HTTPStatusError as exc:
                    if json_out:
                        print_json({"error": str(exc), "status": exc.code, "headers": exc.headers})
                    else:
                        console.print(exc.status_line, markup=False)
                        for name, value in exc.headers:
                            console.print(f"{name}: {value}", markup=False)
                    raise
                exchanges.append(exchange)
                for hop in exchange.history:
                    _err(f"redirect: {hop.status} {hop.reason} {hop.url} -> {hop.location}")
                if verbose:
                    _show_wire(exchange)
                elif exchange.status >= 300:  # not followed (--no-follow), or 304
                    where = dict((n.lower(), v) for n, v in exchange.headers).get("location")
                    _err(f"{exchange.version} {exchange.status} {exchange.reason}")
                    if where:
                        _err(f"Location: {where}")
                if not json_out:
                    if include:
                        sys.stdout.write(exchange.head + "\r\n")
                    sys.stdout.write(exchange.text())
                    if exchange.body and not exchange.body.endswith(b"\n"):
                        sys.stdout.write("\n")
                    sys.stdout.flush()
        opened = client.connections_opened
    if json_out:
        print_json({"exchanges": [x.to_json() for x in exchanges], "connections_opened": opened})
        return
    requests_made = len(exchanges) + sum(len(x.history) for x in exchanges)
    _err(
        f"{requests_made} request{'s' if requests_made != 1 else ''} over "
        f"{opened} connection{'s' if opened != 1 else ''}"
    )


@app.command()
def headers(
    url: UrlArgument,
    cacert: CafileOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """GET URL with requests and with urllib, and compare the request headers each sent."""
    from wirelab.http.client import HTTPClient, lab_url, urllib_exchange
    from wirelab.net.tlsctx import client_context

    url = lab_url(url)
    context = client_context(cafile=cacert) if cacert is not None else None
    with HTTPClient(timeout=timeout, ssl_context=context) as client:
        ours = client.get(url, follow=False)
    _, sent, _ = urllib_exchange(url, timeout=timeout, ssl_context=context)
    table = {"requests": _header_lines(ours.request), "urllib": _header_lines(sent)}
    if json_out:
        print_json(table)
        return
    for library, lines in table.items():
        console.print(f"{library}:", markup=False)
        for name, value in lines:
            console.print(f"  {name}: {value}", markup=False)
    only = {
        lib: sorted(
            {n for n, _ in lines}
            - {n for other, ls in table.items() if other != lib for n, _ in ls}
        )
        for lib, lines in table.items()
    }
    for library, names in only.items():
        if names:
            console.print(f"only {library} sent: {', '.join(names)}", markup=False)


def _header_lines(request: bytes) -> list[tuple[str, str]]:
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    pairs = []
    for line in head:
        name, _, value = line.partition(":")
        pairs.append((name.strip(), value.strip()))
    return pairs


@app.command()
def raw(
    url: UrlArgument,
    method: Annotated[str, typer.Option("--method", help="The request method.")] = "GET",
    cacert: CafileOption = None,
    timeout: TimeoutOption = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Speak HTTP/1.1 over a bare socket (h11) and print exactly the bytes that crossed.

    Standard output gets the request bytes, then the response bytes, unchanged; standard
    error marks where each begins.
    """
    from wirelab.http.client import lab_url
    from wirelab.http.raw import raw_get
    from wirelab.net.tlsctx import client_context

    url = lab_url(url)
    context = client_context(cafile=cacert) if cacert is not None else None
    exchange = raw_get(url, method=method, timeout=timeout, ssl_context=context)
    if json_out:
        print_json(exchange.to_json())
        return
    out = sys.stdout.buffer
    _err(f"--- sent {len(exchange.sent)} bytes")
    out.write(exchange.sent)
    out.flush()
    _err(f"--- received {len(exchange.received)} bytes (body delimited by {exchange.framing})")
    out.write(exchange.received)
    out.flush()


class ServerName(StrEnum):
    """The WSGI servers ``http serve`` runs."""

    gunicorn = "gunicorn"
    waitress = "waitress"
    wsgiref = "wsgiref"


class AppName(StrEnum):
    """The applications ``http serve`` serves."""

    env = "env"
    time_raw = "time-raw"
    time_werkzeug = "time-werkzeug"
    time_webob = "time-webob"
    httpbin = "httpbin"


class WorkerName(StrEnum):
    """gunicorn's worker classes ``http serve`` runs."""

    linger = "linger"
    gthread = "gthread"
    sync = "sync"


@app.command()
def serve(
    host: ServeHostArgument = "127.0.0.1",
    port: PortOption = None,
    app_name: Annotated[
        AppName,
        typer.Option("--app", help="The WSGI app: env, time-raw/-werkzeug/-webob, httpbin."),
    ] = AppName.time_raw,
    server: Annotated[
        ServerName, typer.Option("--server", help="gunicorn (default), waitress or wsgiref.")
    ] = ServerName.gunicorn,
    workers: Annotated[
        int | None,
        typer.Option(
            "-w",
            "--workers",
            help="gunicorn worker processes (default: one per CPU, at most 8).",
            min=1,
            max=64,
            show_default=False,
        ),
    ] = None,
    behind_nginx: Annotated[
        bool,
        typer.Option(
            "--behind-nginx",
            help="Put nginx in front (a buffering reverse proxy); gunicorn listens privately.",
        ),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="A Host the time apps answer (default 127.0.0.1)."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("-v", "--verbose", help="Print every request and response, both ways."),
    ] = False,
    worker_class: Annotated[
        WorkerName,
        typer.Option(
            "--worker-class",
            help="gunicorn's worker: linger (default: gthread whose threads poll for requests), "
            "gthread or sync.",
        ),
    ] = WorkerName.linger,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log", help="gunicorn prints a line per request (it costs about a third)."
        ),
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="HTTPS (gunicorn) with a lab-CA certificate for www.example.com, localhost "
            "and the loopback addresses.",
        ),
    ] = False,
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert", help="HTTPS with this certificate chain (PEM); implies --tls.", dir_okay=False
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="The private key of --cert (PEM).", dir_okay=False)
    ] = None,
) -> None:
    """Serve a chapter 10 WSGI app until Ctrl-C (on the book's port 8000 by default)."""
    from wirelab.http.apps import build
    from wirelab.http.server import (
        GunicornProcess,
        default_workers,
        listen,
        start_waitress,
        start_wsgiref,
    )

    hosts = tuple(allow_host or ("127.0.0.1",))
    number = bind_port(port, "http", "serve")
    if workers is None:
        workers = default_workers()
    https = tls or cert is not None or key is not None
    if https:
        if (cert is None) != (key is None):
            raise typer.BadParameter("--cert and --key go together", param_hint="'--cert'")
        if server is not ServerName.gunicorn or behind_nginx:
            raise typer.BadParameter(
                "HTTPS is served by gunicorn alone (not waitress, wsgiref or --behind-nginx)",
                param_hint="'--tls'",
            )
        if verbose:
            raise typer.BadParameter(
                "-v shows plain HTTP only: the bytes of a TLS socket are encrypted",
                param_hint="'--tls'",
            )
    if behind_nginx:
        if server is not ServerName.gunicorn:
            raise typer.BadParameter("--behind-nginx runs gunicorn", param_hint="'--server'")
        _serve_behind_nginx(host, number, app_name.value, hosts, workers, verbose)
        return
    tls_files = _tls_files(host, cert, key) if https else None
    sock = listen(host, number)
    stop = _stop_on_sigterm()
    where = f"{sock.getsockname()[0]}:{sock.getsockname()[1]}"
    try:
        if server is ServerName.gunicorn:
            args = ", ".join(repr(a) for a in (app_name.value, *hosts))
            child = GunicornProcess(
                f"wirelab.http.apps:build({args})",
                sock,
                workers=workers,
                worker_class=worker_class.value,
                wirelog=verbose,
                access_log=access_log,
                certfile=tls_files.cert if tls_files else None,
                keyfile=tls_files.key if tls_files else None,
            )
            with child:
                child.spawn(inherit=True)
                if tls_files is not None:
                    child.wait_ready(tls_files.probe_context, tls_files.probe_name)
                else:
                    child.wait_ready()
                what = f"{app_name.value} on gunicorn {worker_class.value}, {_workers(workers)}"
                if tls_files is not None:
                    what += f", HTTPS with {tls_files.origin}"
                _err(f"listening at {where} ({what})")
                _wait_for_stop(stop, child)
        else:
            application = build(app_name.value, *hosts, wirelog=verbose)
            starter = start_waitress if server is ServerName.waitress else start_wsgiref
            with starter(application, sock):
                _err(f"listening at {where} ({app_name.value} on {server.value})")
                _wait_for_stop(stop, None)
    finally:
        sock.close()
    _err("stopped")


@dataclass(frozen=True)
class _TLSFiles:
    cert: Path
    key: Path
    origin: str
    probe_context: ssl.SSLContext
    probe_name: str


def _tls_files(host: str, cert: Path | None, key: Path | None) -> _TLSFiles:
    """The certificate and key gunicorn serves, and a verifying context to see it answer."""
    from wirelab.config import state_dir
    from wirelab.http.service import WWW_HOST
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import client_context, server_context

    if cert is not None and key is not None:
        server_context(cert, key)  # ConfigError (one line) for a bad file or a wrong key
        # Readiness probe: it trusts exactly the certificate we serve (a partial chain,
        # pinned), whoever signed it; the name is not checked because it may be any.
        probe = client_context(cafile=cert)
        probe.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        probe.check_hostname = False
        return _TLSFiles(cert, key, str(cert), probe, "")
    names = [WWW_HOST, "localhost"]
    addresses = ["127.0.0.1", "::1"]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host not in names:
            names.append(host)
    else:
        if host not in ("0.0.0.0", "::") and host not in addresses:
            addresses.append(host)
    ca = LabCA.load_or_create(state_dir() / "ca")
    chain, private = ca.server_cert_for(names, state_dir() / "ca", ip_addresses=addresses)
    origin = f"the lab CA's certificate ({ca.cert_path}) for {', '.join(names + addresses)}"
    return _TLSFiles(chain, private, origin, client_context(cafile=ca.cert_path), WWW_HOST)


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count != 1 else ''}"


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    return stop


def _wait_for_stop(stop: threading.Event, child: GunicornProcess | None) -> None:
    """Until Ctrl-C or SIGTERM (or the child's own end, which is an error)."""
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.wait(0.2):
            if child is not None and (code := child.poll()) is not None:
                raise ConfigError(f"gunicorn stopped on its own (status {code})")


def _serve_behind_nginx(
    host: str, port: int, app: str, hosts: tuple[str, ...], workers: int, verbose: bool
) -> None:
    from wirelab.http.nginx import NginxProcess, nginx_binary
    from wirelab.http.server import GunicornProcess, listen

    nginx_binary()  # ServiceUnavailable with the install hint, before anything starts
    stop = _stop_on_sigterm()
    args = ", ".join(repr(a) for a in (app, *hosts))
    child = GunicornProcess(
        f"wirelab.http.apps:build({args})",
        listen("127.0.0.1", 0),  # private: only nginx talks to it
        workers=workers,
        wirelog=verbose,
        access_log=True,
        forwarded_allow_ips="127.0.0.1",  # nginx's X-Forwarded-*, and nobody else's
    )
    with child:
        child.spawn(inherit=True)
        child.wait_ready()
        with NginxProcess(host, port, child.address) as proxy:
            proxy.start()
            _err(
                f"listening at {host}:{proxy.port} (nginx, then {app} on gunicorn at "
                f"{child.address[0]}:{child.address[1]}, {_workers(workers)})"
            )
            _wait_for_stop(stop, child)
    _err("stopped")
