"""``wirelab tls serve|connect|inspect|features`` (chapter 6)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    check_timeout,
    console,
    err_console,
    lab_state,
    print_json,
    run_server,
)
from wirelab.config import LOOPBACK, default_port, state_dir
from wirelab.errors import ConfigError, TLSError
from wirelab.net.addresses import format_address, parse_port

if TYPE_CHECKING:
    from wirelab.tls.inspect import Inspection

__all__ = ["app"]

app = typer.Typer(
    name="tls",
    help="Chapter 6: TLS client and server, the TLS inspector, and the local TLS features.",
    no_args_is_help=True,
)

LabOption = Annotated[
    str | None,
    typer.Option(
        "--lab",
        help="A lab endpoint by name instead of HOST and -p, e.g. tls.expired "
        "(names: `wirelab lab status`).",
        show_default=False,
    ),
]
CafileOption = Annotated[
    Path | None,
    typer.Option(
        "--cafile",
        help="Trust only the CAs in this PEM file. Default: the system store, plus the "
        "lab CA while a lab runs.",
        show_default=False,
    ),
]
ServernameOption = Annotated[
    str | None,
    typer.Option(
        "--servername",
        help="Name to verify the certificate against and send as SNI. Default: HOST "
        "(the endpoint's host name with --lab).",
        show_default=False,
    ),
]
MinVersionOption = Annotated[
    str,
    typer.Option("--min-version", help="Oldest TLS version to accept: 1.2 or 1.3."),
]
MaxVersionOption = Annotated[
    str | None,
    typer.Option(
        "--max-version",
        help="Newest TLS version to offer: 1.2 or 1.3 (default: the newest). "
        "--min-version 1.2 --max-version 1.2 pins TLS 1.2, where --ciphers decides.",
        show_default=False,
    ),
]
CiphersOption = Annotated[
    str | None,
    typer.Option(
        "--ciphers",
        help="OpenSSL cipher string for TLS 1.2, e.g. ECDHE+AESGCM (never below security "
        "level 2). TLS 1.3 suites are not chosen this way: pin 1.2 to see it take effect.",
        show_default=False,
    ),
]
CertOption = Annotated[
    Path | None,
    typer.Option(
        "--cert", help="Client certificate (PEM) to present if asked.", show_default=False
    ),
]
KeyOption = Annotated[
    Path | None, typer.Option("--key", help="Its private key (PEM).", show_default=False)
]
LabCertOption = Annotated[
    bool, typer.Option("--lab-cert", help="Present the running lab's client certificate.")
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict-x509/--no-strict-x509",
        help="RFC 5280 strict certificate checks and subjectAltName-only names (the default, "
        "as in Python 3.13). --no-strict-x509 accepts an older CA such as the book's; it "
        "still verifies the chain to a trusted CA, the dates and the host name.",
    ),
]

_GREETING = ("tls", "greeting")
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _version(text: str, option: str) -> ssl.TLSVersion:
    key = text.strip().lower().removeprefix("tlsv").removeprefix("tls").removeprefix("v")
    try:
        return _VERSIONS[key]
    except KeyError:
        raise typer.BadParameter(f"{option} must be 1.2 or 1.3, not {text!r}") from None


def _versions(minimum: str, maximum: str | None) -> tuple[ssl.TLSVersion, ssl.TLSVersion | None]:
    """The (min, max) pair of the version options; a max below the min is a usage error."""
    low = _version(minimum, "--min-version")
    high = _version(maximum, "--max-version") if maximum is not None else None
    if high is not None and high < low:
        raise typer.BadParameter(f"--max-version {maximum} is older than --min-version {minimum}")
    return low, high


def _client_cert(
    cert: Path | None, key: Path | None, lab_cert: bool
) -> tuple[Path | None, Path | None]:
    """The client certificate to present: --cert/--key, or the lab's with --lab-cert."""
    if key is not None and cert is None:
        raise typer.BadParameter("--key needs --cert")
    if not lab_cert:
        return cert, key
    if cert is not None:
        raise typer.BadParameter("give either --cert or --lab-cert")
    state = lab_state()
    if state is None:
        raise ConfigError("--lab-cert needs a running lab (`wirelab lab up --detach`)")
    from wirelab.tls.service import client_cert_paths

    return client_cert_paths(state.directory)


def _explained(exc: TLSError, cert: Path | None) -> TLSError:
    """The same error, with what the user can do about it where there is something."""
    from wirelab.net.tlsctx import STRICT_X509_HINT

    text = str(exc)
    if "requires a client certificate" in text and cert is None:
        return TLSError(f"{text} (give --cert and --key, or --lab-cert)")
    if "not RFC 5280-conformant" in text:
        return TLSError(f"{text}; {STRICT_X509_HINT}")
    return exc


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    servername: str
    lab_ca: str | None


def _target(host: str | None, port: str | None, lab: str | None, servername: str | None) -> _Target:
    """Where to connect and what name to check: HOST and -p, a lab endpoint, or the greeting.

    The grammar's rule: a missing HOST or port comes from the running lab's greeting
    endpoint, else from the documented default (localhost, 11060).
    """
    state = lab_state()
    lab_ca = state.ca if state is not None else None
    if lab is not None:
        if host is not None or port is not None:
            raise typer.BadParameter("give either HOST and -p, or --lab, not both")
        if state is None:
            raise ConfigError("no lab is running (start one with `wirelab lab up --detach`)")
        matches = [ep for ep in state.endpoints if ep.name == lab]
        if not matches:
            raise ConfigError(f"the lab has no endpoint {lab!r} (see `wirelab lab status`)")
        ep = matches[0]
        return _Target(ep.address, ep.port, servername or ep.host, lab_ca)
    number = parse_port(port, "tcp") if port is not None else None
    if state is not None:
        try:
            ep = state.endpoint(*_GREETING)
        except ConfigError:
            pass
        else:
            if host is None:
                where_port = ep.port if number is None else number
                return _Target(ep.address, where_port, servername or ep.host, lab_ca)
            return _Target(host, ep.port if number is None else number, servername or host, lab_ca)
    where = host or "localhost"
    if number is None:
        number = default_port(*_GREETING)
    return _Target(where, number, servername or where, lab_ca)


@app.command()
def serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    cert: Annotated[
        Path | None,
        typer.Option("--cert", help="Certificate chain (PEM). Default: one from the lab CA."),
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Its private key (PEM).")] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option("--client-ca", help="Require client certificates signed by this CA."),
    ] = None,
    handshake_timeout: Annotated[
        float,
        typer.Option("--handshake-timeout", help="Seconds per handshake.", callback=check_timeout),
    ] = 5.0,
    min_version: MinVersionOption = "1.2",
    max_version: MaxVersionOption = None,
    ciphers: CiphersOption = None,
) -> None:
    """Greet every TLS client with the book's "Simple is better than complex." (Ctrl-C stops).

    Port: -p, else 11060.
    """
    from wirelab.net.ca import LabCA
    from wirelab.net.tlsctx import server_context
    from wirelab.tls.client import restrict_ciphers
    from wirelab.tls.server import GreetingServer, open_greeting_server
    from wirelab.tls.service import HOSTNAMES

    number = parse_port(port, "tcp") if port is not None else default_port(*_GREETING)
    low, high = _versions(min_version, max_version)
    if cert is None:
        if key is not None:
            raise typer.BadParameter("--key needs --cert")
        ca = LabCA.load_or_create(state_dir() / "ca")
        cert, key = ca.server_cert_for(list(HOSTNAMES), state_dir() / "ca")
        origin = f"the lab CA ({ca.cert_path}) for {', '.join(HOSTNAMES)}"
    else:
        origin = str(cert)
    ctx = server_context(
        cert,
        key,
        client_cafile=client_ca,
        require_client_cert=client_ca is not None,
        minimum_version=low,
        maximum_version=high,
    )
    if ciphers:
        restrict_ciphers(ctx, ciphers)
    server = GreetingServer(
        ctx, greet_client=client_ca is not None, handshake_timeout=handshake_timeout
    )

    run_server(
        lambda: open_greeting_server(host, number, server),
        f"TLS greeting, certificate from {origin}",
        loggers=["wirelab.tls.server"],
        stopped=lambda _: f"stopped after greeting {server.stats.greeted} clients",
    )


@app.command()
def connect(
    host: ClientHostArgument = None,
    port: PortOption = None,
    lab: LabOption = None,
    cafile: CafileOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    lab_cert: LabCertOption = False,
    servername: ServernameOption = None,
    min_version: MinVersionOption = "1.2",
    max_version: MaxVersionOption = None,
    ciphers: CiphersOption = None,
    strict_x509: StrictOption = True,
    timeout: TimeoutOption = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Connect with TLS (verified), print what the server sends until it closes.

    As the book's client: it sends nothing, and it accepts a server that closes without a
    TLS close_notify (the book's does), saying so; it sends its own close_notify at the end.
    """
    from wirelab.tls.client import fetch, make_client_context

    target = _target(host, port, lab, servername)
    cert, key = _client_cert(cert, key, lab_cert)
    low, high = _versions(min_version, max_version)
    ctx = make_client_context(
        cafile=cafile,
        certfile=cert,
        keyfile=key,
        extra_cafile=target.lab_ca,
        minimum_version=low,
        maximum_version=high,
        ciphers=ciphers,
        strict_x509=strict_x509,
    )
    try:
        greeting = fetch(
            target.host, target.port, context=ctx, servername=target.servername, timeout=timeout
        )
    except TLSError as exc:
        raise _explained(exc, cert) from exc
    if json_output:
        print_json(
            {
                "server": greeting.server,
                "servername": greeting.servername,
                "version": greeting.version,
                "cipher": greeting.cipher,
                "peer_subject": greeting.peer_subject,
                "strict_x509": strict_x509,
                "close_notify": greeting.close_notify,
                "text": greeting.text,
            }
        )
        return
    relaxed = " (not strict X.509)" if not strict_x509 else ""
    err_console.print(
        f"{greeting.version} {greeting.cipher} with {greeting.server}, certificate verified "
        f"for {greeting.servername}{relaxed}",
        markup=False,
    )
    console.print(greeting.text, end="" if greeting.text.endswith("\n") else "\n", markup=False)
    if not greeting.close_notify:
        err_console.print(
            "the server closed without a TLS close_notify (as the book's safe_tls.py does), "
            "so the end of its text is not authenticated",
            markup=False,
        )


def _render(report: Inspection) -> None:
    where = format_address((report.host, report.port))
    if report.peer != where:
        where += f" ({report.peer})"
    via = f" after STARTTLS ({report.starttls})" if report.starttls else ""
    console.print(f"{where}{via}, certificate checked for {report.servername}")
    console.print(f"verdict:  {report.verdict.line}")
    if report.version:
        note = " (unverified session, --insecure)" if report.insecure_session else ""
        console.print(
            f"session:  {report.version}, {report.cipher} ({report.cipher_bits}-bit cipher key), "
            f"compression {report.compression or 'none'}{note}"
        )
    elif report.handshake_error:
        console.print(
            f"session:  not established: {report.handshake_error} (this client offers TLS 1.2 "
            "or newer)"
        )
    else:
        console.print("session:  not established: verification failed (--insecure shows it)")
    if report.name_match:
        console.print(f"name:     {report.servername} matches {report.name_match}")
    elif not report.chain:
        console.print("name:     not checked: no certificate was received")
    else:
        console.print(f"name:     {report.servername} matches no name on the certificate")
    if report.chain_source:
        level = ", at OpenSSL security level 0" if report.chain_relaxed else ""
        console.print(f"chain (as the server sent it to the {report.chain_source} probe{level}):")
    elif report.chain or not report.handshake_error:
        console.print(
            f"chain ({'verified' if report.chain_verified else 'as the server sent it'}):"
        )
    for depth, cert in enumerate(report.chain):
        valid = f"{cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}"
        if cert.expired():
            valid += " (expired)"
        elif cert.not_yet_valid():
            valid += " (not yet valid)"
        console.print(f"  {depth}  subject  {cert.subject}")
        if cert.names:
            console.print(f"     names    {', '.join(cert.names)}")
        console.print(f"     issuer   {cert.issuer}" + (" (itself)" if cert.self_signed else ""))
        console.print(f"     valid    {valid}")
        ca = ", CA" if cert.is_ca else ""
        console.print(f"     key      {cert.key}{ca}, signed {cert.signature_algorithm}")
    if report.client_certificate != "not requested":
        console.print(f"client:   {report.client_certificate}")
    if report.findings:
        console.print(f"findings: {', '.join(report.findings)}")
    if report.probe_verdict is not None:
        console.print(f"checked:  over {report.chain_source}: {report.probe_verdict.line}")
    if report.versions:
        console.print("versions:")
        for result in report.versions:
            console.print(f"  {result.version}  {result.status}")
        relaxed = [r.version for r in report.versions if r.relaxed]
        if relaxed:
            which = " and ".join(relaxed)
            console.print(
                f"  (the {which} probes use a relaxed security level, OpenSSL level 0, without "
                "which this OpenSSL does not offer them; they still verify the certificate "
                "and send no data)",
                markup=False,
            )


@app.command()
def inspect(
    host: ClientHostArgument = None,
    port: PortOption = None,
    lab: LabOption = None,
    starttls: Annotated[
        str | None,
        typer.Option(
            "--starttls",
            help="Upgrade a plaintext port first: smtp, pop3, imap or ftp.",
            show_default=False,
        ),
    ] = None,
    cafile: CafileOption = None,
    cert: CertOption = None,
    key: KeyOption = None,
    lab_cert: LabCertOption = False,
    servername: ServernameOption = None,
    min_version: MinVersionOption = "1.2",
    max_version: MaxVersionOption = None,
    ciphers: CiphersOption = None,
    strict_x509: StrictOption = True,
    versions: Annotated[
        bool, typer.Option("--versions", help="Probe which of TLS 1.0-1.3 the server accepts.")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="If verification fails, also show the session from an unverified handshake "
            "(no data is sent; the verdict and the exit status stay those of the verified one).",
        ),
    ] = False,
    timeout: TimeoutOption = 5.0,
    json_output: JsonOption = False,
) -> None:
    """Report a server's TLS: version, cipher, chain, names, trust. Exit 1 if untrusted.

    A server that shares no version or cipher with a secure client (one that speaks only
    TLS 1.0, say) is probed version by version to say why; the command exits 1 with one line.
    A server that requires a client certificate is named as such (exit 1) unless --cert/--key
    or --lab-cert give one; `client:` says whether one was asked for and accepted.
    """
    from wirelab.tls._starttls import PROTOCOLS
    from wirelab.tls.inspect import inspect as run_inspect

    if starttls is not None and starttls.lower() not in PROTOCOLS:
        raise typer.BadParameter(f"--starttls must be one of {', '.join(PROTOCOLS)}")
    target = _target(host, port, lab, servername)
    cert, key = _client_cert(cert, key, lab_cert)
    low, high = _versions(min_version, max_version)
    if insecure:
        err_console.print(
            "warning: --insecure: if verification fails, a second handshake runs without "
            "verification to show the session; it sends no data"
        )
    try:
        report = run_inspect(
            target.host,
            target.port,
            servername=target.servername,
            starttls=starttls.lower() if starttls else None,
            cafile=cafile,
            lab_cafile=target.lab_ca,
            certfile=cert,
            keyfile=key,
            minimum_version=low,
            maximum_version=high,
            ciphers=ciphers,
            strict_x509=strict_x509,
            versions=versions,
            insecure=insecure,
            timeout=timeout,
        )
    except TLSError as exc:
        raise _explained(exc, cert) from exc
    if json_output:
        print_json(report.to_json())
    else:
        _render(report)
    if report.handshake_error is not None:  # a secure client cannot talk to it at all
        # One line from the CLI's top level, after the report (the same as any TLSError).
        raise TLSError(f"TLS with {report.peer} failed: {report.verdict.line}")
    if not report.trusted:
        raise typer.Exit(1)


@app.command()
def features(json_output: JsonOption = False) -> None:
    """What the local ssl module and OpenSSL support."""
    from wirelab.tls.features import features as gather

    info = gather()
    if json_output:
        print_json(info)
        return
    console.print(f"{info['openssl_version']} (Python {info['python']})")
    has = info["has"]
    console.print("HAS_*:    " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in has.items()))
    console.print("versions (built in / negotiated by a default context):")
    for label, state in info["versions"].items():
        built = "yes" if state["built_in"] else "no"
        default = "yes" if state["default_context"] else "no"
        console.print(f"  {label:8} {built:4} {default}")
    ctx = info["default_context"]
    console.print(
        f"default context: {ctx['minimum_version']} to {ctx['maximum_version']}, security "
        f"level {ctx['security_level']}, {ctx['verify_mode']}, check_hostname "
        f"{ctx['check_hostname']}, {len(ctx['ciphers'])} cipher suites"
    )
    store = info["trust_store"]
    console.print(f"trust store: {store['certificates']} CA certificates from {store['cafile']}")
    counts = ", ".join(f"{len(v)} {k}_*" for k, v in info["constants"].items())
    console.print(f"constants: {counts} (--json lists them)")


@app.command()
def lessons(json_output: JsonOption = False) -> None:
    """Inspect every broken-certificate endpoint of the running lab: one verdict line each."""
    from wirelab.tls.badcerts import LESSONS
    from wirelab.tls.inspect import inspect as run_inspect

    state = lab_state()
    if state is None:
        raise ConfigError("no lab is running (start one with `wirelab lab up --detach`)")
    served = state.service("tls").endpoints
    rows: list[tuple[str, str, str | None, str]] = []
    for lesson in LESSONS:
        ep = served.get(lesson.endpoint)
        if ep is None:
            rows.append((lesson.endpoint, "-", None, "not served: this OpenSSL refuses the key"))
            continue
        report = run_inspect(ep.address, ep.port, servername=ep.host, lab_cafile=state.ca)
        where = format_address(ep.sockaddr)
        rows.append((lesson.endpoint, where, report.verdict.problem, report.verdict.line))
    if json_output:
        print_json(
            [{"endpoint": e, "address": a, "problem": p, "verdict": v} for e, a, p, v in rows]
        )
        return
    for endpoint, where, _, line in rows:
        console.print(f"{endpoint:10}  {where:21}  {line}")
