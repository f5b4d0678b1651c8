"""Set-up of the hostile suite: the lab's endpoints, a normal client per service, the checks.

Every test here runs against the session lab (``wirelab_lab``) and is parametrized by lab
service name at collection (``wirelab.lab.registry.services()``), so a new chapter's service
joins every probe without an edit here, except one: its **normal client**. A normal client is
what an ordinary user of the service does (one question, one query, one handshake); the suite
asks it to be served within :data:`SERVED_WITHIN` seconds (:func:`served_within`: stretched
on an overloaded machine) during and after every probe. A service without an entry in
:data:`NORMAL_CLIENTS` fails ``test_every_service_has_a_normal_client`` with "add a normal
client for <service>"; an endpoint its client does not know fails the same way.

The clients are written here with the standard library, dnspython and pyzmq, not with
wirelab's own clients, so they are independent of the servers they judge.

Besides the normal client, every test checks (:func:`pytest_runtest_call`) that no
traceback reached the lab's logs: the ``*.log`` files of its state directory, the log records
of the process that runs it (the session lab runs in this process), and this process's
standard error; the project-wide leak check (tests/conftest.py) adds threads, sockets and
child processes. Memory is checked by the probes (:func:`lab_rss`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import random
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wirelab.lab.registry import services
from wirelab.lab.service import BoundEndpoint
from wirelab.lab.state import LabState

#: Seconds within which a normal client must be served, during and after every probe.
SERVED_WITHIN = 2.0

#: The most :func:`served_within` stretches :data:`SERVED_WITHIN` on an overloaded machine.
MAX_LOAD_STRETCH = 3.0


def served_within() -> float:
    """:data:`SERVED_WITHIN`, stretched while the machine's run queue exceeds its cores.

    On a machine with a core to spare this is 2 s exactly. When the one-minute load average
    per core is above 1 (several test runs sharing two cores), it is stretched in proportion,
    at most :data:`MAX_LOAD_STRETCH` times: a process-per-connection server (inetd) starts a
    Python for each client and cannot do that in 2 s of wall time on a queue of 12. A server
    that refuses or hangs still fails, and the message names the load.
    """
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return SERVED_WITHIN * min(MAX_LOAD_STRETCH, max(1.0, per_core))


_HERE = Path(__file__).parent


# -- the directory's marker and parametrization ----------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``hostile`` (``pytest -m hostile`` runs the suite)."""
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.hostile)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``service`` runs once per registered lab service."""
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", [svc.name for svc in services()], scope="module")


def service_endpoints(state: LabState, service: str) -> list[BoundEndpoint]:
    """The endpoints of ``service`` in the running lab (the test is skipped if it cannot run)."""
    found = [ep for ep in state.endpoints if ep.service == service]
    if not found:
        if service in state.unavailable and not os.environ.get("WIRELAB_REQUIRE_SERVICES"):
            pytest.skip(f"lab service {service} is unavailable: {state.unavailable[service]}")
        pytest.fail(f"the lab has no endpoint of service {service!r}")
    return found


# -- normal clients ---------------------------------------------------------------------------


class NoNormalClient(Exception):
    """The registry has no normal client for this service or endpoint."""


#: A normal client: one ordinary exchange with an endpoint, each wait bounded by the last
#: argument (seconds), or raise (AssertionError, OSError, ssl.SSLError).
NormalClient = Callable[[LabState, BoundEndpoint, float], None]


def _connect(ep: BoundEndpoint, timeout: float) -> socket.socket:
    return socket.create_connection(ep.sockaddr, timeout=timeout)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise AssertionError(f"closed after {len(data)} of {size} bytes: {data!r}")
        data += chunk
    return data


def _recv_until(sock: socket.socket, done: Callable[[bytes], bool], limit: int = 1 << 16) -> bytes:
    data = b""
    while not done(data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise AssertionError(f"more than {limit} bytes in answer: {data[:100]!r}...")
    return data


def _udp_exchange(
    ep: BoundEndpoint, request: bytes, accept: Callable[[bytes], bool], timeout: float
) -> None:
    """Send ``request`` until an accepted reply comes (UDP may drop: a normal client retries)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(ep.sockaddr)
        while time.monotonic() < deadline:
            sock.send(request)
            sock.settimeout(max(0.01, min(0.1, deadline - time.monotonic())))
            try:
                while True:
                    if accept(sock.recv(65535)):
                        return
            except TimeoutError:
                continue
            except ConnectionRefusedError as exc:
                raise AssertionError(f"{ep.name}: port unreachable (nothing listens)") from exc
    raise AssertionError(f"{ep.name}: no reply in {timeout:g} s")


def _udp(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint not in ("udp", "lossy"):
        raise NoNormalClient
    tag = random.randrange(1, 1 << 31)
    payload = b"hostile suite"
    expected = b"#%d Your data was %d bytes long" % (tag, len(payload))
    _udp_exchange(ep, b"#%d %s" % (tag, payload), lambda reply: reply == expected, timeout)


def _tcp(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint == "sixteen":
        with _connect(ep, timeout) as sock:
            sock.sendall(b"Hi there, server")
            assert _recv_exactly(sock, 16) == b"Farewell, client"
    elif ep.endpoint == "upper":
        with _connect(ep, timeout) as sock:
            sock.sendall(b"capitalize this!")
            assert _recv_exactly(sock, 16) == b"CAPITALIZE THIS!"
    else:
        raise NoNormalClient


def _dns(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import dns.message
    import dns.query
    import dns.rcode

    query = dns.message.make_query("www.example.com", "A")
    if ep.endpoint == "udp":
        holder: list[dns.message.Message] = []

        def accept(wire: bytes) -> bool:
            with contextlib.suppress(Exception):
                reply = dns.message.from_wire(wire)
                if reply.id == query.id:
                    holder.append(reply)
                    return True
            return False

        _udp_exchange(ep, query.to_wire(), accept, timeout)
        reply = holder[0]
    elif ep.endpoint == "tcp":
        reply = dns.query.tcp(query, ep.address, port=ep.port, timeout=timeout)
    else:
        raise NoNormalClient
    assert reply.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(reply.rcode())
    assert reply.answer, f"no answer for www.example.com A: {reply}"


def _geo(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client

    if ep.endpoint != "https":
        raise NoNormalClient
    conn = http.client.HTTPSConnection(
        ep.address, ep.port, timeout=timeout, context=state.ssl_context()
    )
    try:
        conn.request("GET", "/search?q=Boston&format=json", headers={"Host": ep.host})
        response = conn.getresponse()
        body = response.read(1 << 20)
    finally:
        conn.close()
    assert response.status == 200, (response.status, body[:200])
    assert json.loads(body), "no match for Boston"


#: What the TLS greeting endpoints say (then a newline, or not).
_GREETING = b"Simple is better than complex."


def _tls_handshake(ep: BoundEndpoint, context: ssl.SSLContext, timeout: float) -> bytes:
    with _connect(ep, timeout) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        return _recv_until(tls, lambda data: False, limit=4096)


def _tls(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    context = state.ssl_context()
    if ep.endpoint == "greeting":
        said = _tls_handshake(ep, context, timeout)
        assert said.rstrip(b"\r\n") == _GREETING, said
    elif ep.endpoint == "clientauth":
        tls_dir = Path(state.directory) / "tls"
        context.load_cert_chain(tls_dir / "client.pem", tls_dir / "client-key.pem")
        said = _tls_handshake(ep, context, timeout)
        assert said.startswith(b"Hello, ") and said.rstrip(b"\r\n").endswith(_GREETING), said
    elif ep.endpoint in ("expired", "wronghost", "selfsigned", "untrusted", "weakkey"):
        # A lesson endpoint serves a broken certificate on purpose: being served means its
        # certificate arrives and a verifying client refuses it.
        try:
            said = _tls_handshake(ep, context, timeout)
        except ssl.SSLCertVerificationError:
            return
        raise AssertionError(f"{ep.name}: a verifying client accepted it and read {said[:80]!r}")
    else:
        raise NoNormalClient


def _zen(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint not in ("zen", "inetd-nowait", "inetd-wait"):
        raise NoNormalClient
    with _connect(ep, timeout) as sock:
        sock.sendall(b"Beautiful is better than?")
        answer = _recv_until(sock, lambda data: data.endswith(b"."), limit=1024)
    assert answer == b"Ugly.", answer


def _cache(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint != "memcached":
        raise NoNormalClient
    with _connect(ep, timeout) as sock:
        sock.sendall(b"version\r\n")
        line = _recv_until(sock, lambda data: data.endswith(b"\r\n"), limit=1024)
    assert line.startswith(b"VERSION "), line


def _queue(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import zmq

    if ep.endpoint != "rep":
        raise NoNormalClient
    context = zmq.Context()
    try:
        req = context.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        req.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
        try:
            req.connect(f"tcp://{ep.address}:{ep.port}")
            req.send(b'{"points": [[3, 4], [5, 12]]}')
            try:
                reply = req.recv()
            except zmq.Again:
                raise AssertionError(f"{ep.name}: no reply in {timeout:g} s") from None
        finally:
            req.close(linger=0)
    finally:
        context.term()
    assert json.loads(reply) == {"sums": [25, 169]}, reply


def _blocks(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    message = b"Beautiful is better than ugly.\n"
    if ep.endpoint == "stream":
        with _connect(ep, timeout) as sock:
            sock.sendall(message)
            sock.shutdown(socket.SHUT_WR)
            reply = _recv_until(sock, lambda data: False, limit=1024)
        assert reply.startswith(b"received 31 bytes, sha256 "), reply
    elif ep.endpoint == "blocks":
        with _connect(ep, timeout) as sock:
            sock.sendall(struct.pack("!I", len(message)) + message + struct.pack("!I", 0))
            (size,) = struct.unpack("!I", _recv_exactly(sock, 4))
            assert size < 1024, size
            reply = _recv_exactly(sock, size)
        assert reply.startswith(b"received 1 block, 31 bytes, sha256 "), reply
    else:
        raise NoNormalClient


def _rpc(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client
    import xmlrpc.client

    if ep.endpoint in ("xmlrpc", "jsonrpc"):
        if ep.endpoint == "xmlrpc":
            body = xmlrpc.client.dumps((2, 3), "addtogether").encode()
            kind = "text/xml"
        else:
            call = {"jsonrpc": "2.0", "method": "lengths", "params": ["abc"], "id": 1}
            body, kind = json.dumps(call).encode(), "application/json"
        conn = http.client.HTTPConnection(ep.address, ep.port, timeout=timeout)
        try:
            conn.request("POST", "/RPC2", body, {"Content-Type": kind})
            response = conn.getresponse()
            data = response.read(1 << 20)
        finally:
            conn.close()
        assert response.status == 200, (response.status, data[:200])
        if ep.endpoint == "xmlrpc":
            assert xmlrpc.client.loads(data)[0] == (5,), data[:200]
        else:
            assert json.loads(data).get("result") == [[3, "abc"]], data[:200]
    elif ep.endpoint == "rpyc":
        import rpyc
        from rpyc.core.stream import SocketStream

        conn = rpyc.utils.factory.connect_stream(
            SocketStream.connect(ep.address, ep.port, timeout=timeout),
            config={"sync_request_timeout": timeout},
        )
        try:
            files = conn.root.list_files()
        finally:
            conn.close()
        assert isinstance(tuple(files), tuple), files
    else:
        raise NoNormalClient


def _dialogue(
    state: LabState,
    ep: BoundEndpoint,
    timeout: float,
    steps: list[tuple[bytes, bytes]],
    *,
    implicit_tls: bool,
) -> None:
    """A line protocol (FTP, SMTP, POP3): send each line, check how each reply starts.

    The first step's line is empty: the server speaks first. ``NNN-`` lines continue a reply.
    """
    raw = _connect(ep, timeout)
    sock: socket.socket = raw
    try:
        if implicit_tls:  # TLS from the first byte, verified against the lab CA
            sock = state.ssl_context().wrap_socket(raw, server_hostname="localhost")
        reader = sock.makefile("rb")
        try:
            for line, expected in steps:
                if line:
                    sock.sendall(line + b"\r\n")
                reply = reader.readline(1024)
                while reply[3:4] == b"-":  # a multi-line reply: read to its last line
                    reply = reader.readline(1024)
                assert reply.startswith(expected), f"{line!r} got {reply[:200]!r}"
        finally:
            reader.close()
    finally:
        sock.close()
        raw.close()


def _ftp(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint not in ("ftp", "ftps"):
        raise NoNormalClient
    steps = [
        (b"", b"220"),
        (b"USER anonymous", b"331"),
        (b"PASS hostile@example.com", b"230"),
        (b"QUIT", b"221"),
    ]
    _dialogue(state, ep, timeout, steps, implicit_tls=ep.endpoint == "ftps")


def _smtp(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint not in ("smtp", "smtps"):
        raise NoNormalClient
    steps = [(b"", b"220"), (b"EHLO hostile.example.com", b"250"), (b"QUIT", b"221")]
    _dialogue(state, ep, timeout, steps, implicit_tls=ep.endpoint == "smtps")


def _www(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client

    conn: http.client.HTTPConnection
    if ep.endpoint == "http":
        conn = http.client.HTTPConnection(ep.address, ep.port, timeout=timeout)
    elif ep.endpoint == "https":
        conn = http.client.HTTPSConnection(
            ep.address, ep.port, timeout=timeout, context=state.ssl_context()
        )
    else:
        raise NoNormalClient
    try:
        conn.request("GET", "/get?hostile=suite", headers={"Host": ep.host})
        response = conn.getresponse()
        body = response.read(1 << 20)
    finally:
        conn.close()
    assert response.status == 200, (response.status, body[:200])
    assert json.loads(body)["args"] == {"hostile": "suite"}, body[:200]


def _bank(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client

    conn: http.client.HTTPConnection
    if ep.endpoint in ("insecure", "attacker"):
        conn = http.client.HTTPConnection(ep.address, ep.port, timeout=timeout)
    elif ep.endpoint == "hardened":
        conn = http.client.HTTPSConnection(
            ep.address, ep.port, timeout=timeout, context=state.ssl_context()
        )
    else:
        raise NoNormalClient
    try:  # the attacker's front page, or a bank's login page (a Flask view and a template)
        conn.request("GET", "/" if ep.endpoint == "attacker" else "/login")
        response = conn.getresponse()
        body = response.read(1 << 20)
    finally:
        conn.close()
    assert response.status == 200, (response.status, body[:200])
    assert b"attacker" in body if ep.endpoint == "attacker" else b'name="password"' in body


def _djbank(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client

    if ep.endpoint != "https":
        raise NoNormalClient
    conn = http.client.HTTPSConnection(
        ep.address, ep.port, timeout=timeout, context=state.ssl_context()
    )
    try:  # the login page: a Django view, a template and a CSRF cookie
        conn.request("GET", "/accounts/login/", headers={"Host": ep.host})
        response = conn.getresponse()
        body = response.read(1 << 20)
    finally:
        conn.close()
    assert response.status == 200, (response.status, body[:200])
    assert b'name="csrfmiddlewaretoken"' in body, body[:200]


def _tinysite(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import http.client

    if ep.endpoint != "http":
        raise NoNormalClient
    conn = http.client.HTTPConnection(ep.address, ep.port, timeout=timeout)
    try:  # the crawlers' first two requests: robots.txt, then the home page
        conn.request("GET", "/robots.txt", headers={"Host": ep.host})
        response = conn.getresponse()
        robots = response.read(1 << 20)
        conn.request("GET", "/", headers={"Host": ep.host})
        home = conn.getresponse()
        body = home.read(1 << 20)
    finally:
        conn.close()
    assert response.status == 200 and b"Disallow: /private/" in robots, robots[:200]
    assert home.status == 200 and b"<title>Tinysite</title>" in body, body[:200]


def _pop3(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint == "pop3":  # USER and PASS come only after STLS here: greeting and QUIT
        steps = [(b"", b"+OK"), (b"QUIT", b"+OK")]
    elif ep.endpoint == "pop3s":
        account = state.account
        steps = [
            (b"", b"+OK"),
            (b"USER " + account.user.encode(), b"+OK"),
            (b"PASS " + account.password.encode(), b"+OK"),
            (b"STAT", b"+OK"),
            (b"QUIT", b"+OK"),
        ]
    else:
        raise NoNormalClient
    _dialogue(state, ep, timeout, steps, implicit_tls=ep.endpoint == "pop3s")


def _imap(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint == "imap":  # LOGIN comes only after STARTTLS here: greeting and LOGOUT
        steps = [(b"", b"* OK"), (b"a1 LOGOUT", b"* BYE")]
    elif ep.endpoint == "imaps":
        account = state.account
        login = f'a1 LOGIN {account.user} "{account.password}"'.encode()
        steps = [
            (b"", b"* OK"),
            (login, b"a1 OK"),
            (b"a2 EXAMINE INBOX", b"* "),
            (b"a3 LOGOUT", b""),
        ]
    else:
        raise NoNormalClient
    _dialogue(state, ep, timeout, steps, implicit_tls=ep.endpoint == "imaps")


def _ssh(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    import paramiko  # type: ignore[import-untyped]

    if ep.endpoint != "ssh":
        raise NoNormalClient
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(Path(state.directory) / "ssh" / "known_hosts"))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            ep.address,
            ep.port,
            username=state.account.user,
            password=state.account.password,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            look_for_keys=False,
            allow_agent=False,
        )
        _, stdout, _ = client.exec_command("echo hostile", timeout=timeout)
        said = stdout.read(1024)
    except (paramiko.SSHException, EOFError) as exc:
        raise AssertionError(f"{ep.name}: {exc!r}") from exc
    finally:
        transport = client.get_transport()
        client.close()
        # paramiko leaves its handshake timer running after a failed handshake (15 s).
        timer = getattr(getattr(transport, "packetizer", None), "_Packetizer__timer", None)
        if timer is not None:
            timer.cancel()
            timer.join(1.0)
    assert said.strip() == b"hostile", said


#: Telnet commands (RFC 854): interpret as command, and the option negotiation verbs.
_IAC, _DONT, _DO, _WONT, _WILL, _SB, _SE = 255, 254, 253, 252, 251, 250, 240


def _telnet_read_until(sock: socket.socket, marker: bytes, limit: int = 8192) -> bytes:
    """Read text until ``marker``, refusing every option the server offers or asks for."""
    text = b""
    pending = b""
    while marker not in text:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed before {marker!r}: {text[-200:]!r}")
        data = pending + chunk
        pending = b""
        i = 0
        while i < len(data):
            byte = data[i]
            if byte != _IAC:
                text += bytes([byte])
                i += 1
                continue
            if i + 1 >= len(data):
                pending = data[i:]
                break
            verb = data[i + 1]
            if verb in (_DO, _DONT, _WILL, _WONT):
                if i + 2 >= len(data):
                    pending = data[i:]
                    break
                option = data[i + 2]
                if verb == _DO:
                    sock.sendall(bytes([_IAC, _WONT, option]))
                elif verb == _WILL:
                    sock.sendall(bytes([_IAC, _DONT, option]))
                i += 3
            elif verb == _SB:
                end = data.find(bytes([_IAC, _SE]), i)
                if end < 0:
                    pending = data[i:]
                    break
                i = end + 2
            else:
                if verb == _IAC:
                    text += bytes([_IAC])
                i += 2
        if len(text) > limit:
            raise AssertionError(f"no {marker!r} in {limit} bytes: {text[-200:]!r}")
    return text


def _telnet(state: LabState, ep: BoundEndpoint, timeout: float) -> None:
    if ep.endpoint != "telnet":
        raise NoNormalClient
    account = state.account
    with _connect(ep, timeout) as sock:
        _telnet_read_until(sock, b"login: ")
        sock.sendall(account.user.encode() + b"\r\n")
        _telnet_read_until(sock, b"Password: ")
        sock.sendall(account.password.encode() + b"\r\n")
        _telnet_read_until(sock, b"$ ")


#: The normal client of each lab service, by service name. A new service adds its entry here.
NORMAL_CLIENTS: dict[str, NormalClient] = {
    "udp": _udp,
    "tcp": _tcp,
    "dns": _dns,
    "geo": _geo,
    "tls": _tls,
    "zen": _zen,
    "cache": _cache,
    "queue": _queue,
    "blocks": _blocks,
    "rpc": _rpc,
    "ftp": _ftp,
    "www": _www,
    "djbank": _djbank,
    "bank": _bank,
    "tinysite": _tinysite,
    "smtp": _smtp,
    "ssh": _ssh,
    "telnet": _telnet,
    "pop3": _pop3,
    "imap": _imap,
}


def served(state: LabState, ep: BoundEndpoint, when: str) -> float:
    """Run the normal client of ``ep``'s service; fail unless it is served within 2 s.

    Returns the seconds it took. ``when`` says which moment of a probe this is, for messages.
    """
    client = NORMAL_CLIENTS.get(ep.service)
    if client is None:
        raise NoNormalClient(
            f"add a normal client for {ep.service} (NORMAL_CLIENTS in tests/hostile/conftest.py)"
        )
    limit = served_within()
    start = time.monotonic()
    try:
        client(state, ep, limit)
    except NoNormalClient:
        raise NoNormalClient(
            f"add a normal client for {ep.name} (NORMAL_CLIENTS in tests/hostile/conftest.py)"
        ) from None
    except (AssertionError, OSError, ssl.SSLError) as exc:
        took = time.monotonic() - start
        raise AssertionError(
            f"{ep.name}: a normal client was not served {when} ({took:.2f} s{_load()}): {exc!r}"
        ) from exc
    took = time.monotonic() - start
    assert took <= limit, f"{ep.name}: a normal client took {took:.2f} s {when}{_load()}"
    return took


def _load() -> str:
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return f", load {per_core:.1f} per core" if per_core > 1 else ""


# -- the lab's memory -------------------------------------------------------------------------


def _children_of(pid: int) -> list[int] | None:
    """Direct children of ``pid`` from ``/proc/PID/task/*/children`` (None: not available)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:
            if task.exists():
                return None  # a kernel without CONFIG_PROC_CHILDREN
        except (OSError, ValueError):
            continue
    return found


def _descendants(pid: int) -> set[int]:
    found = {pid}
    todo = [pid]
    while todo:
        children = _children_of(todo.pop())
        if children is None:
            return _descendants_by_scan(pid)
        fresh = set(children) - found
        found |= fresh
        todo.extend(fresh)
    return found


def _descendants_by_scan(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found = {pid}
    grew = True
    while grew:
        more = {child for child, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def lab_processes(state: LabState) -> set[int]:
    """The lab's process and every live (not zombie) process under it."""
    alive = set()
    for pid in _descendants(state.pid):
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
    return alive


def lab_rss_by_process(state: LabState) -> dict[int, tuple[str, int]]:
    """``pid -> (name, resident bytes)`` for the lab's process and every process under it."""
    found = {}
    for pid in _descendants(state.pid):
        # KeyError: a child that has exited but is not reaped yet (a zombie) has no VmRSS
        with contextlib.suppress(OSError, ValueError, KeyError):
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            found[pid] = (fields["Name"].strip(), int(fields["VmRSS"].split()[0]) * 1024)
    return found


def release_free_memory() -> None:
    """Collect garbage and hand freed heap back to the system (glibc ``malloc_trim``).

    The session lab runs in this process: without this, memory the lab freed but the
    allocator kept would read as growth.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def lab_rss(state: LabState) -> int:
    """Resident bytes of the lab's process and every process under it (memcached, inetd ...)."""
    return sum(rss for _, rss in lab_rss_by_process(state).values())


@pytest.fixture(scope="session")
def lab_baseline(wirelab_lab: LabState) -> dict[int, tuple[str, int]]:
    """The lab's resident memory, per process, once every normal client has been served once.

    The session lab runs in the test process, so the libraries the normal clients import and
    the servers' first requests count too: they are paid before the baseline, not blamed on
    the probes.
    """
    for ep in wirelab_lab.endpoints:
        with contextlib.suppress(Exception):
            served(wirelab_lab, ep, "while the baseline is taken")
    release_free_memory()
    return lab_rss_by_process(wirelab_lab)


@pytest.fixture(autouse=True)
def _baseline_first(lab_baseline: dict[int, tuple[str, int]]) -> None:
    """Take the baseline before the first probe, whichever test runs first."""


# -- findings still open ----------------------------------------------------------------------

#: (probe, endpoint name) -> why it fails today. A listed pair that fails makes its test an
#: xfail; one that passes makes it fail (strict): remove the entry once the fix lands.
KNOWN_FINDINGS: dict[tuple[str, str], str] = {}


@dataclass
class Verdicts:
    """What one probe found at each endpoint of a service."""

    probe: str
    failures: dict[str, str] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)

    def run(self, ep: BoundEndpoint, check: Callable[[], None]) -> None:
        """Run one endpoint's probe; a failure is recorded, the other endpoints still run."""
        try:
            check()
        except NoNormalClient:
            raise
        except (AssertionError, OSError, ssl.SSLError, TimeoutError) as exc:
            self.failures[ep.name] = str(exc) or repr(exc)
        else:
            self.passed.append(ep.name)

    def judge(self) -> None:
        """Fail on any unexpected failure; xfail on known ones only; fail a fixed known one."""
        known = {ep for (probe, ep) in KNOWN_FINDINGS if probe == self.probe}
        unexpected = {ep: why for ep, why in self.failures.items() if ep not in known}
        if unexpected:
            lines = "\n".join(f"  {ep}: {why}" for ep, why in unexpected.items())
            pytest.fail(f"{self.probe} broke {len(unexpected)} endpoint(s):\n{lines}")
        fixed = [ep for ep in self.passed if ep in known]
        if fixed:
            pytest.fail(
                f"{self.probe}: known finding(s) now pass at {', '.join(fixed)}; remove them "
                "from KNOWN_FINDINGS in tests/hostile/conftest.py"
            )
        if self.failures:
            reasons = "; ".join(
                f"{ep}: {KNOWN_FINDINGS[(self.probe, ep)]} [this run: {why}]"
                for ep, why in self.failures.items()
            )
            pytest.xfail(reasons)


# -- no traceback reaches a log ---------------------------------------------------------------


class _TracebackCatcher(logging.Handler):
    """Keeps the log records that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.caught: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.stack_info or "Traceback" in record.getMessage():
            error = record.exc_info[1] if record.exc_info else None
            why = (
                f" [{type(error).__module__}.{type(error).__qualname__}: {error}]" if error else ""
            )
            self.caught.append(f"{record.name}: {record.getMessage()[:300]}{why[:300]}")


def _log_sizes(directory: Path) -> dict[Path, int]:
    sizes = {}
    for path in directory.rglob("*.log"):
        with contextlib.suppress(OSError):
            sizes[path] = path.stat().st_size
    return sizes


def _excerpt(where: str, text: str) -> str:
    at = text.index("Traceback")
    return f"{where}: {text[max(0, at - 200) : at + 1500]}"


class TracebackWatch:
    """Tracebacks that reached the lab's log files, log records or stderr since the last look."""

    def __init__(self, directory: Path, capfd: pytest.CaptureFixture[str]) -> None:
        self.directory = directory
        self.capfd = capfd
        self.offsets = _log_sizes(directory)
        self.catcher = _TracebackCatcher()

    def take(self) -> list[str]:
        """What arrived since the last call (each traceback is reported once)."""
        found: list[str] = []
        sizes = _log_sizes(self.directory)
        for path, size in sizes.items():
            start = self.offsets.get(path, 0)
            start = 0 if size < start else start  # rotated: read the new file whole
            if size == start:
                continue
            with path.open("rb") as fh:
                fh.seek(start)
                text = fh.read(4 << 20).decode("utf-8", "replace")
            if "Traceback" in text:
                found.append(_excerpt(path.name, text))
        self.offsets = sizes
        found.extend(self.catcher.caught)
        self.catcher.caught = []
        out, err = self.capfd.readouterr()
        for name, text in (("stdout", out), ("stderr", err)):
            if "Traceback" in text:
                found.append(_excerpt(name, text))
        return found


#: The watch of the test running now (at most one).
_CURRENT: list[TracebackWatch] = []


def new_tracebacks(wait: float = 0.02) -> list[str]:
    """Tracebacks that reached the lab's logs since the last look, during this test.

    A probe calls it after each endpoint, so that a traceback is blamed on that endpoint (and
    a listed finding can cover it); what is left is checked when the test ends. ``wait`` lets
    a line the lab writes as the probe's last connection closes arrive first.
    """
    time.sleep(wait)
    return _CURRENT[-1].take() if _CURRENT else []


_WATCH = pytest.StashKey[tuple[Path, pytest.CaptureFixture[str]]]()


@pytest.fixture(autouse=True)
def _watch_for_tracebacks(
    request: pytest.FixtureRequest, wirelab_lab: LabState, capfd: pytest.CaptureFixture[str]
) -> None:
    """Have :func:`pytest_runtest_call` look for tracebacks around this test."""
    request.node.stash[_WATCH] = (Path(wirelab_lab.directory), capfd)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test during which a traceback reached the lab's log files, log records or stderr.

    Checked in the call phase (not a fixture's teardown), so that an ``xfail`` covers it.
    """
    stashed = item.stash.get(_WATCH, None)
    if stashed is None:
        return (yield)
    watch = TracebackWatch(*stashed)
    root = logging.getLogger()
    root.addHandler(watch.catcher)
    _CURRENT.append(watch)
    try:
        result = yield
        found = new_tracebacks()
    finally:
        _CURRENT.remove(watch)
        root.removeHandler(watch.catcher)
    assert not found, "a traceback reached the lab's log:\n" + "\n---\n".join(found)
    return result
