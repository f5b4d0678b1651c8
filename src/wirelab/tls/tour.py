"""Chapter 6 in the tour: verified TLS, the inspector, client certificates, broken certificates."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from wirelab.errors import TLSError, TransportError
from wirelab.lab.tour import Chapter, TourContext
from wirelab.tls.badcerts import LESSONS
from wirelab.tls.client import fetch, make_client_context
from wirelab.tls.features import features
from wirelab.tls.inspect import inspect
from wirelab.tls.server import GREETING
from wirelab.tls.service import client_cert_paths

CHAPTER = Chapter(
    6,
    "TLS",
    "TLS is only as good as its verification: check the chain, check the name, and say why "
    "when either fails.",
)


@CHAPTER.step("a verified connection: the version, the cipher, then the greeting")
def _greeting(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "greeting")
    got = fetch(ep.address, ep.port, context=ctx.ssl_context(), servername=ep.host)
    ctx.say(f"connected to {got.server}, certificate verified for {got.servername}")
    ctx.say(f"{got.version} with {got.cipher}; the server said {got.text.strip()!r}")
    ended = "a close_notify" if got.close_notify else "a bare close, as the book's server does"
    ctx.say(f"the book server's 30 bytes exactly, then {ended}")
    ctx.check(got.data == GREETING, f"unexpected greeting {got.data!r}")
    ctx.check(got.close_notify, "the lab's server ended without a close_notify")


@CHAPTER.step("thirty clients at once, each one verified")
def _many(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "greeting")
    context = ctx.ssl_context()

    def one(_: int) -> bytes:
        return fetch(ep.address, ep.port, context=context, servername=ep.host).data

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(one, range(30), timeout=30))
    ctx.say(f"{answers.count(GREETING)} of 30 concurrent clients got the greeting")
    ctx.check(answers.count(GREETING) == 30, "some clients were not greeted")


@CHAPTER.step("the inspector reads the chain and checks the name itself")
def _inspect(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "greeting")
    report = inspect(ep.address, ep.port, servername=ep.host, lab_cafile=ctx.lab.ca)
    ctx.say(report.verdict.line)
    for depth, cert in enumerate(report.chain):
        ctx.say(f"  {depth}: {cert.subject}, {cert.key}, signed {cert.signature_algorithm}")
    ctx.say(f"  the name {report.servername} matches the entry {report.name_match!r}")
    ctx.check(report.trusted and report.name_match, "the lab certificate did not verify")


@CHAPTER.step("client certificates: refused without one, greeted by name with the lab's")
def _client_auth(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "clientauth")
    try:
        fetch(ep.address, ep.port, context=ctx.ssl_context(), servername=ep.host)
    except TLSError as exc:
        ctx.say(f"without a certificate: {exc}")
    else:
        ctx.check(False, "the server greeted a client without a certificate")
    cert, key = client_cert_paths(ctx.lab.directory)
    context = make_client_context(cafile=ctx.lab.ca, certfile=cert, keyfile=key)
    got = fetch(ep.address, ep.port, context=context, servername=ep.host)
    ctx.say(f"with {cert.name}: {got.text.strip()!r}")
    ctx.check(got.text.startswith("Hello, brandon."), f"unexpected greeting {got.text!r}")


@CHAPTER.step("five broken certificates, five plain verdicts")
def _lessons(ctx: TourContext) -> None:
    endpoints = ctx.lab.service("tls").endpoints
    for lesson in LESSONS:
        ep = endpoints.get(lesson.endpoint)
        if ep is None:
            ctx.say(f"{lesson.endpoint:10}  not served: this OpenSSL refuses to load the key")
            continue
        report = inspect(ep.address, ep.port, servername=ep.host, lab_cafile=ctx.lab.ca)
        ctx.say(f"{lesson.endpoint:10}  {report.verdict.line}")
        ctx.check(
            report.verdict.problem == lesson.problem,
            f"{lesson.endpoint}: expected {lesson.problem}, got {report.verdict.problem}",
        )


@CHAPTER.step("which TLS versions the server accepts")
def _versions(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "greeting")
    report = inspect(ep.address, ep.port, servername=ep.host, lab_cafile=ctx.lab.ca, versions=True)
    for result in report.versions:
        ctx.say(f"{result.version}: {result.status}")
    status = {r.version: r.status for r in report.versions}
    ctx.check(status.get("TLSv1.3") == "accepted", "TLS 1.3 was not accepted")
    ctx.check(status.get("TLSv1.0") != "accepted", "TLS 1.0 was accepted (RFC 8996)")


@CHAPTER.step("wrong protocol both ways: clear errors, and the server keeps serving")
def _wrong_protocol(ctx: TourContext) -> None:
    ep = ctx.lab.endpoint("tls", "greeting")
    with socket.create_connection(ep.sockaddr, timeout=5) as plain:
        plain.sendall(b"HELLO, is this plain text?\r\n")
        answer = plain.recv(100)
    what = "a TLS alert, then the close" if answer[:1] == b"\x15" else "the connection closed"
    ctx.say(f"a plaintext client on the TLS port: {what}; the server logged one line")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def banner() -> None:
            listener.settimeout(5)
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"220 plaintext service ready\r\n")

        peer = threading.Thread(target=banner, name="tls-tour-banner")
        peer.start()
        try:
            fetch("127.0.0.1", port, context=ctx.ssl_context(), servername="localhost")
        except TransportError as exc:
            ctx.say(f"a TLS client on a plaintext port: {exc}")
            ctx.check("does not speak TLS" in str(exc), f"unclear error: {exc}")
        else:
            ctx.check(False, "TLS to a plaintext port did not fail")
        finally:
            peer.join(10)
    got = fetch(ep.address, ep.port, context=ctx.ssl_context(), servername=ep.host)
    ctx.say(f"and the TLS server still greets: {got.text.strip()!r}")


@CHAPTER.step("what the local ssl module supports")
def _features(ctx: TourContext) -> None:
    info = features()
    ctx.say(info["openssl_version"])
    offered = [v for v, s in info["versions"].items() if s["default_context"]]
    built = [v for v, s in info["versions"].items() if s["built_in"]]
    ctx.say(f"built in: {', '.join(built)}; a default context negotiates {', '.join(offered)}")
    ctx.say(f"default security level {info['default_context']['security_level']}")
    ctx.check("TLSv1.0" not in offered, "the default context would negotiate TLS 1.0")


CHAPTERS = (CHAPTER,)
