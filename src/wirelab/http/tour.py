"""Chapters 9 and 10 in the tour: HTTP clients against the lab's httpbin, then WSGI servers."""

from __future__ import annotations

import io
import json
import socket
import tempfile
from pathlib import Path

from wirelab.lab.tour import Chapter, TourContext

CHAPTER9 = Chapter(
    9,
    "HTTP clients",
    "Requests and responses over one connection: redirects, errors, auth, cookies, reuse, "
    "and the bytes underneath.",
)
CHAPTER10 = Chapter(
    10,
    "HTTP servers",
    "WSGI: one calling convention, many servers; the same app three ways; bad input bounded.",
)


def _bases(ctx: TourContext) -> tuple[str, str]:
    http = ctx.lab.endpoint("www", "http")
    https = ctx.lab.endpoint("www", "https")
    return f"http://{http.address}:{http.port}", f"https://{https.address}:{https.port}"


@CHAPTER9.step("requests and urllib send different request headers")
def _headers(ctx: TourContext) -> None:
    from wirelab.http.client import HTTPClient, urllib_exchange

    _, https = _bases(ctx)
    with HTTPClient(ssl_context=ctx.ssl_context()) as client:
        ours = json.loads(client.get(f"{https}/headers").body)["headers"]
    _, _, body = urllib_exchange(f"{https}/headers", ssl_context=ctx.ssl_context())
    theirs = json.loads(body)["headers"]
    ctx.say(f"requests: User-Agent {ours['User-Agent']}, Accept-Encoding {ours['Accept-Encoding']}")
    ctx.say(
        f"urllib:   User-Agent {theirs['User-Agent']}, Accept-Encoding {theirs['Accept-Encoding']}"
    )
    ctx.say(f"requests keeps the connection ({ours['Connection']}), urllib closes it")
    ctx.check(
        theirs["Connection"] == "close" and ours["Connection"] == "keep-alive",
        f"{ours} / {theirs}",
    )


@CHAPTER9.step("redirects are followed with their history, or shown as they are")
def _redirects(ctx: TourContext) -> None:
    from wirelab.http.client import HTTPClient

    _, https = _bases(ctx)
    with HTTPClient(ssl_context=ctx.ssl_context()) as client:
        followed = client.get(f"{https}/status/301")
        raw = client.get(f"{https}/status/301", follow=False)
    for hop in followed.history:
        ctx.say(f"{hop.status} {hop.reason} -> {hop.location}")
    ctx.say(f"then {followed.status} at {followed.url}")
    location = dict((n.lower(), v) for n, v in raw.headers).get("location")
    ctx.say(f"with redirects off: {raw.status} {raw.reason}, Location: {location}")
    ctx.check([h.status for h in followed.history] == [301, 302], "history is not [301, 302]")
    ctx.check(raw.status == 301, f"no-follow gave {raw.status}")


@CHAPTER9.step("a 4xx or 5xx is an error carrying its status and headers")
def _errors(ctx: TourContext) -> None:
    from wirelab.http.client import HTTPClient, HTTPStatusError

    _, https = _bases(ctx)
    with HTTPClient(ssl_context=ctx.ssl_context()) as client:
        try:
            client.get(f"{https}/status/500", raise_for_status=True)
        except HTTPStatusError as exc:
            ctx.say(f"error: {exc}")
            ctx.say(f"headers: {', '.join(name for name, _ in exc.headers)}")
            ctx.check(exc.code == 500, f"status {exc.code}")
            return
    ctx.check(False, "no error for a 500")


@CHAPTER9.step("Basic auth: 401 and a challenge, then 200 with credentials")
def _auth(ctx: TourContext) -> None:
    from wirelab.http.client import HTTPClient

    _, https = _bases(ctx)
    url = f"{https}/basic-auth/brandon/atigdngnatwwal"
    with HTTPClient(ssl_context=ctx.ssl_context()) as client:
        denied = client.get(url)
    with HTTPClient(ssl_context=ctx.ssl_context(), auth=("brandon", "atigdngnatwwal")) as client:
        granted = client.get(url)
    challenge = dict((n.lower(), v) for n, v in denied.headers).get("www-authenticate")
    ctx.say(f"without credentials: {denied.status}, WWW-Authenticate: {challenge}")
    ctx.say(f"with them: {granted.status} {granted.text().strip()}")
    ctx.check(denied.status == 401 and granted.status == 200, "auth did not behave")


@CHAPTER9.step("a session keeps cookies and reuses its connection")
def _session(ctx: TourContext) -> None:
    from wirelab.http.client import HTTPClient

    http, _ = _bases(ctx)
    with HTTPClient() as client:
        client.get(f"{http}/cookies/set?session-id=1234")
        cookies = json.loads(client.get(f"{http}/cookies").body)
        for _ in range(3):
            client.get(f"{http}/ip")
        opened = client.connections_opened
    ctx.say(f"the server set a cookie; the next request sent it back: {cookies}")
    ctx.say(f"6 requests (one a redirect) over {opened} TCP connection")
    ctx.check(cookies == {"cookies": {"session-id": "1234"}} and opened == 1, f"{cookies} {opened}")


@CHAPTER9.step("the bytes on the wire, parsed by h11: head, blank line, framed body")
def _raw(ctx: TourContext) -> None:
    from wirelab.http.raw import raw_get

    http, _ = _bases(ctx)
    exchange = raw_get(f"{http}/stream/2")
    head = exchange.received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    request_line = exchange.sent.split(b"\r\n", 1)[0].decode("latin-1")
    ctx.say(f"sent {len(exchange.sent)} bytes: {request_line!r} ...")
    ctx.say(f"received {len(exchange.received)} bytes: {head[0]!r}, {len(head) - 1} headers")
    ctx.say(f"the body was delimited by {exchange.framing}")
    ctx.check(exchange.framing == "chunked" and exchange.status == 200, exchange.framing)


@CHAPTER10.step("a WSGI app sees the request as a dict, the environ")
def _environ(ctx: TourContext) -> None:
    import requests

    from wirelab.http.apps import build
    from wirelab.http.server import listen, start_wsgiref

    with start_wsgiref(build("env"), listen("127.0.0.1", 0)) as server:
        port = server.address[1]
        text = requests.get(f"http://127.0.0.1:{port}/hello?x=1", timeout=10).text
    shown = [line.strip() for line in text.splitlines() if "PATH_INFO" in line or "QUERY" in line]
    for line in shown:
        ctx.say(line)
    ctx.say("(the server's own process environment is hidden, unlike the book's wsgi_env.py)")
    ctx.check("'PATH_INFO': '/hello'" in text, "no PATH_INFO")


@CHAPTER10.step("the time app three ways, under gunicorn, waitress and wsgiref")
def _three_ways(ctx: TourContext) -> None:
    import requests

    from wirelab.http.apps import build
    from wirelab.http.server import GunicornProcess, listen, start_waitress, start_wsgiref

    def codes(port: int) -> list[int]:
        with requests.Session() as s:
            return [
                s.post(f"http://127.0.0.1:{port}/", timeout=10).status_code,
                s.get(f"http://localhost:{port}/", timeout=10).status_code,
                s.get(f"http://127.0.0.1:{port}/foo", timeout=10).status_code,
                s.get(f"http://127.0.0.1:{port}/", timeout=10).status_code,
            ]

    results = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        GunicornProcess(
            "wirelab.http.apps:build('time-raw')",
            listen("127.0.0.1", 0),
            logfile=Path(tmp) / "g.log",
        ) as child,
    ):
        child.spawn()
        child.wait_ready()
        results["raw WSGI on gunicorn"] = codes(child.address[1])
    with start_waitress(build("time-werkzeug"), listen("127.0.0.1", 0)) as server:
        results["Werkzeug on waitress"] = codes(server.address[1])
    with start_wsgiref(build("time-webob"), listen("127.0.0.1", 0)) as server:
        results["WebOb on wsgiref"] = codes(server.address[1])
    ctx.say("POST /, Host localhost, path /foo, then the right request:")
    for name, found in results.items():
        ctx.say(f"{name}: {found}")
    ctx.check(all(v == [501, 404, 404, 200] for v in results.values()), str(results))


@CHAPTER10.step("a middleware shows the HTTP both ways")
def _wire(ctx: TourContext) -> None:
    import requests

    from wirelab.http.apps import WireLogger, build
    from wirelab.http.server import listen, start_waitress

    out = io.StringIO()
    with start_waitress(WireLogger(build("time-raw"), out), listen("127.0.0.1", 0)) as server:
        requests.get(f"http://127.0.0.1:{server.address[1]}/", timeout=10).close()
    lines = out.getvalue().splitlines()
    for line in lines[:2] + [line for line in lines if "> HTTP/" in line]:
        ctx.say(line)
    ctx.check(any("> HTTP/1.1 200 OK" in line for line in lines), "no response logged")


@CHAPTER10.step("the web host refuses a request-smuggling shape and keeps serving")
def _smuggling(ctx: TourContext) -> None:
    from wirelab.http.server import probe_http

    address = ctx.lab.endpoint("www", "http").sockaddr
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(
            b"POST /post HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    first = answer.split(b"\r\n", 1)[0].decode("latin-1") if answer else "(closed)"
    ctx.say(f"Content-Length and Transfer-Encoding together: {first}")
    after = probe_http(address, host_header="www.example.com", path="/get")
    ctx.say(f"the next client: {after.decode('latin-1')}")
    ctx.check(
        answer.count(b"HTTP/1.1 ") <= 1 and b" 200 " not in answer.split(b"\r\n", 1)[0],
        first,
    )
    ctx.check(after.startswith(b"HTTP/1.1 200"), "the server stopped serving")


CHAPTERS = (CHAPTER9, CHAPTER10)
