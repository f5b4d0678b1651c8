"""The running playground against the book: addresses, forwarding, NAT, broadcast, MTU, hops,
DNS, TCP through NAT, the CA in every host, link faults, and a closed world.

Every test runs real programs inside the namespaces (``ip netns exec``): our ``wirelab``
commands for the chapter steps, and small stdlib scripts as independent peers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wirelab.playground.netns import Playground, run
from wirelab.playground.picture import draw_png, live_state, text_diagram
from wirelab.playground.steps import BOOK_PATH
from wirelab.playground.topology import BRIDGES, HOSTS, LINKS

pytestmark = pytest.mark.netns

#: What ``wirelab tour --playground`` must show, step by step (title: evidence in "why").
TOUR = {
    "the server sees the modem's address": "www saw 10.25.1.65 (modemA), not 192.168.1.11",
    "the path MTU is 1500": "mtu 1500",
    "broadcasts stay on homeA": "h2 heard it, h3 heard it, h4 heard nothing",
    "the hops from h1 to www": " -> ".join(BOOK_PATH),
    "DNS on the backbone": "MX 10 mail",
    "TLS on www:443, verified": "trusted, names www.example.com, TLSv1.3",
    "TCP through NAT to the server room": "",
    "httpbin on www sees the modem": "httpbin saw origin 10.25.1.65",
    "HTTPS on www, verified": "verified TLS, origin 10.25.1.65",
    "SMTP with STARTTLS on mail": "STARTTLS verified against the lab CA",
    "POP3S on mail": "POP3S verified, brandon's mailbox has messages",
    "IMAPS on mail": "IMAPS verified, folder INBOX",
    "Telnet on ftp": "logged in to ftp.example.com, ran echo",
    "SSH on www and h2": "www and h2 answered with the pinned host key",
    "anonymous FTP on ftp": "/pub holds academic, linux",
}


@pytest.fixture(scope="module")
def tour_steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """``wirelab tour --playground --json`` once: it builds a private playground (no other
    is recorded in its state directory), runs the chapter steps from h1, and removes it."""
    from tests.conftest import run_wirelab
    from tests.playground.conftest import require_netns

    require_netns()
    home = tmp_path_factory.mktemp("tour-home")
    env = dict(os.environ, WIRELAB_HOME=str(home), NO_COLOR="1", COLUMNS="200")
    done = run_wirelab("tour", "--playground", "--json", env=env, timeout=180)
    document = json.loads(done.stdout)
    assert (done.returncode == 0) == document["ok"], done.stderr
    assert not (home / "playground").exists() or not any((home / "playground").iterdir())
    return {step["title"]: step for step in document["steps"]}


@pytest.mark.parametrize("title", list(TOUR))
def test_tour_shows_what_the_book_shows(
    tour_steps: dict[str, dict[str, object]], title: str
) -> None:
    step = tour_steps[title]
    assert step["ok"], (step["why"], step["output"])
    assert step["why"] == TOUR[title]


def py(
    pg: Playground, name: str, code: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in host ``name``."""
    return pg.exec(name, [sys.executable, "-c", textwrap.dedent(code)], timeout=timeout)


def test_live_addresses_routes_and_mtu_match_the_topology(playground: Playground) -> None:
    live = live_state(playground)
    assert set(live["nodes"]) == {h.name for h in HOSTS} | set(BRIDGES)
    for h in HOSTS:
        interfaces = live["nodes"][h.name]["interfaces"]
        for device, addresses in h.addresses.items():
            assert interfaces[device]["addresses"] == list(addresses), (h.name, device)
        routes = live["nodes"][h.name]["routes"]
        for route in h.routes:
            assert " ".join(route.argv()) in routes, (h.name, route)
    mtus = {i["mtu"] for n in live["nodes"].values() for i in n["interfaces"].values()}
    assert mtus == {1500}
    assert len(live["links"]) == len(LINKS)
    assert "modemA 10.25.1.65, 192.168.1.1 (eth0) --- (eth1) isp 10.25.1.1" in text_diagram(live)


def test_forwarding_is_set_explicitly(playground: Playground) -> None:
    for h in HOSTS:
        out = playground.exec(h.name, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip()
        assert out == ("1" if h.forwarding else "0"), h.name


def test_modems_masquerade_with_nftables(playground: Playground) -> None:
    assert playground.nat in ("nftables", "iptables")
    if playground.nat == "nftables":
        rules = playground.exec("modemA", ["nft", "list", "ruleset"]).stdout
        assert 'oifname "eth0" masquerade' in rules
        assert playground.exec("isp", ["nft", "list", "ruleset"]).stdout.strip() == ""


def test_chapter2_h4_comes_from_modemB(playground: Playground) -> None:
    """An independent stdlib client on h4: www's UDP server logs modemB's address."""
    done = py(
        playground,
        "h4",
        """
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"from h4", ("10.130.1.4", 1060))
            print(s.recv(100).decode())
        """,
    )
    assert done.stdout.strip() == "Your data was 7 bytes long", done.stderr
    log = (playground.host_dir("www") / "udp.log").read_text()
    assert "10.25.1.66:" in log
    assert "192.168.1.14" not in log


def test_dns_answers_an_independent_client(playground: Playground) -> None:
    """dnspython on h4 (behind the other NAT) asks 10.1.1.1 over UDP and TCP."""
    done = py(
        playground,
        "h4",
        """
        import dns.message, dns.query
        for name, rtype in (("www.example.com", "A"), ("h1.example.com", "A"),
                            ("smtp.example.com", "CNAME"), ("google.com", "A")):
            q = dns.message.make_query(name, rtype)
            for answer in (dns.query.udp(q, "10.1.1.1", timeout=5),
                           dns.query.tcp(q, "10.1.1.1", timeout=5)):
                print(name, answer.rcode(), [r.to_text() for a in answer.answer for r in a])
        """,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "www.example.com 0 ['10.130.1.4']", done.stderr
    assert lines[2] == "h1.example.com 0 ['192.168.1.11']"
    assert lines[4] == "smtp.example.com 0 ['mail.example.com.']"
    assert lines[6].startswith("google.com 5 ") or lines[6].startswith("google.com 3 ")


def test_hosts_behind_nat_cannot_be_reached_from_outside(playground: Playground) -> None:
    """A server on h1 is reachable from h2 (same LAN) but not from www, by any address."""
    server = subprocess.Popen(
        playground.argv(
            "h1",
            [
                sys.executable,
                "-c",
                "import socket,time\n"
                "s=socket.create_server(('0.0.0.0',2222))\n"
                "print('ready',flush=True)\n"
                "time.sleep(30)\n",
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        probe = """
        import socket, sys
        for address in sys.argv[1:]:
            try:
                socket.create_connection((address, 2222), timeout=2).close()
                print(address, "connected")
            except OSError as exc:
                print(address, type(exc).__name__)
        """
        inside = playground.exec(
            "h2", [sys.executable, "-c", textwrap.dedent(probe), "192.168.1.11"]
        )
        assert inside.stdout.strip() == "192.168.1.11 connected"
        outside = playground.exec(
            "www", [sys.executable, "-c", textwrap.dedent(probe), "192.168.1.11", "10.25.1.65"]
        )
        results = dict(line.split() for line in outside.stdout.splitlines())
        assert results["10.25.1.65"] == "ConnectionRefusedError"  # modemA answers, forwards nothing
        assert results["192.168.1.11"] != "connected"
    finally:
        server.kill()
        server.communicate()


def test_lab_ca_is_in_every_host_directory(playground: Playground) -> None:
    first = (playground.host_dir("h1") / "ca.crt").read_bytes()
    assert first.startswith(b"-----BEGIN CERTIFICATE-----")
    for h in HOSTS:
        assert (playground.host_dir(h.name) / "ca.crt").read_bytes() == first
    done = py(playground, "h1", "import os, ssl; print(ssl.get_default_verify_paths().cafile)")
    assert done.stdout.strip() == str(playground.host_dir("h1") / "ca.crt")


def test_resolv_conf_inside_points_at_the_backbone(playground: Playground) -> None:
    done = playground.exec("h3", ["cat", "/etc/resolv.conf"])
    assert done.stdout.splitlines() == ["nameserver 10.1.1.1", "search example.com"]


def _udp_replies(pg: Playground, count: int, wait: float = 0.3) -> int:
    done = py(
        pg,
        "h1",
        f"""
        import socket
        got = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout({wait})
            for n in range({count}):
                s.sendto(b"x", ("10.130.1.4", 1060))
                try:
                    s.recv(100)
                    got += 1
                except TimeoutError:
                    pass
        print(got)
        """,
    )
    return int(done.stdout)


def test_link_loss_and_rate_then_clear(playground: Playground) -> None:
    try:
        changed = playground.shape("h1", "modemA", loss="100%", rate="1mbit")
        assert changed == [f"{playground.prefix}-h1:eth1", f"{playground.prefix}-homeA:h1"]
        assert "tbf" in playground.exec("h1", ["tc", "qdisc", "show", "dev", "eth1"]).stdout
        assert _udp_replies(playground, 3) == 0
    finally:
        playground.shape("h1", "modemA", clear=True)
    assert _udp_replies(playground, 3, wait=5) == 3  # a loaded machine may answer slowly
    assert "tbf" not in playground.exec("h1", ["tc", "qdisc", "show", "dev", "eth1"]).stdout


def test_rate_limit_slows_a_transfer(playground: Playground) -> None:
    """1 Mbit/s on modemA's side of the isp wire: 200 kB take well over a second."""
    code = """
    import socket, sys, time
    data = b"x" * 200_000
    s = socket.create_connection(("10.130.1.4", 2223), timeout=20)
    start = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(round(time.monotonic() - start, 2))
    """
    sink = subprocess.Popen(
        playground.argv(
            "www",
            [
                sys.executable,
                "-c",
                "import socket\n"
                "s=socket.create_server(('0.0.0.0',2223))\n"
                "print('ready',flush=True)\n"
                "c,_=s.accept()\n"
                "while c.recv(65536): pass\n"
                "c.sendall(b'k')\n",
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        playground.shape("modemA", "isp", rate="1mbit")
        seconds = float(py(playground, "h1", code, timeout=60).stdout)
        assert seconds > 1.2  # 1.6 Mbit at 1 Mbit/s
    finally:
        playground.shape("modemA", "isp", clear=True)
        sink.kill()
        sink.communicate()


def test_nothing_inside_reaches_outside(playground: Playground) -> None:
    """The machine's own addresses and listeners are out of reach from every host."""
    ours = json.loads(run(["ip", "-j", "-4", "addr", "show"]))
    addresses = [a["local"] for ln in ours for a in ln.get("addr_info", [])]
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    probe = """
    import socket, sys
    port = int(sys.argv[1])
    for address in sys.argv[2:]:
        try:
            socket.create_connection((address, port), timeout=1).close()
            print(address, "REACHED")
        except OSError as exc:
            print(address, type(exc).__name__)
    """
    outside = [a for a in addresses if not a.startswith("127.")] + ["8.8.8.8", "192.0.2.1"]
    try:
        for h in ("h1", "modemA", "isp", "backbone", "www"):
            done = playground.exec(
                h, [sys.executable, "-c", textwrap.dedent(probe), str(port), *outside]
            )
            assert "REACHED" not in done.stdout, (h, done.stdout)
            assert done.stdout.count("\n") == len(outside), done.stderr
            # and the machine's listener on loopback is not the host's loopback
            done = playground.exec(
                h, [sys.executable, "-c", textwrap.dedent(probe), str(port), "127.0.0.1"]
            )
            assert done.stdout.strip() == "127.0.0.1 ConnectionRefusedError"
    finally:
        listener.close()


def test_no_playground_interface_lives_in_the_machines_namespace(playground: Playground) -> None:
    ours = {ln["ifname"] for ln in json.loads(run(["ip", "-j", "link", "show"]))}
    plumbing = {p.device for ln in LINKS for p in (ln.a, ln.b)} | {"br0"}
    assert not (ours & plumbing) - {"eth0", "eth1", "eth2"}
    for ln in json.loads(run(["ip", "-j", "link", "show"])):
        assert not ln["ifname"].startswith(playground.prefix)
        assert ln.get("master") is None or not ln["master"].startswith(playground.prefix)


def test_status_picture_is_drawn_from_live_state(playground: Playground, tmp_path: Path) -> None:
    path = draw_png(live_state(playground), tmp_path / "playground.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_server_room_mail_ftp_and_web_answer_through_nat(playground: Playground) -> None:
    """Independent stdlib clients on h1: SMTP on mail:25 with STARTTLS verified against the
    lab CA the host trusts, FTP on ftp:21, httpbin on www:80, which reports the caller's
    address: modemA's, as the book's playground shows."""
    done = py(
        playground,
        "h1",
        """
        import ftplib, json, smtplib, urllib.request
        import ssl
        with smtplib.SMTP("mail.example.com", 25, timeout=10) as smtp:
            code, text = smtp.ehlo("h1.example.com")
            print("smtp", code, b"STARTTLS" in text)
            # the lab CA from the host's directory (SSL_CERT_FILE), full verification
            smtp.starttls(context=ssl.create_default_context())
            print("tls", smtp.sock.version() in ("TLSv1.2", "TLSv1.3"), smtp.ehlo()[0])
        ftp = ftplib.FTP("ftp.example.com", timeout=10)
        print("ftp", ftp.getwelcome()[:3])
        ftp.close()
        with urllib.request.urlopen("http://www.example.com/get", timeout=20) as reply:
            print("http", reply.status, json.load(reply)["origin"])
        """,
        timeout=60,
    )
    assert done.stdout.splitlines() == [
        "smtp 250 True",
        "tls True 250",
        "ftp 220",
        "http 200 10.25.1.65",
    ], done.stderr[-600:]


#: What listens in each server-room host (TCP), as the book's section 3.4 had it; SSH on all.
LISTENING = {
    "mail": {22, 25, 110, 143, 465, 993, 995},
    "www": {22, 80, 443},
    "ftp": {21, 22, 23, 990, 1060},
    "h1": {22},
    "backbone": {22, 53},
}


def test_server_room_services_listen_inside_their_hosts(playground: Playground) -> None:
    """Every lab service is bound in its own host's namespace (``ss`` there), nowhere else."""
    for name, ports in LISTENING.items():
        done = playground.exec(name, ["ss", "-Hltn"])
        found = {int(line.split()[3].rsplit(":", 1)[1]) for line in done.stdout.splitlines()}
        # www's gunicorn listens on a private loopback port behind the front: not counted
        public = {p for p in found if p < 2000}
        assert public == ports, (name, done.stdout)


def test_pop_imap_https_and_telnet_answer_independent_clients(playground: Playground) -> None:
    """stdlib clients on h1, through modemA's NAT: POP3S and POP3+STLS on mail, IMAPS and
    IMAP+STARTTLS on mail, HTTPS on www (verified against the lab CA the host trusts; httpbin
    sees modemA), and the Telnet login prompt on ftp."""
    done = py(
        playground,
        "h1",
        """
        import imaplib, json, poplib, socket, ssl, urllib.request
        context = ssl.create_default_context()  # SSL_CERT_FILE: the host's lab CA
        pop = poplib.POP3_SSL("mail.example.com", 995, context=context, timeout=10)
        pop.user("brandon"); pop.pass_("abc123")
        print("pop3s", pop.stat()[0] >= 1); pop.quit()
        pop = poplib.POP3("mail.example.com", 110, timeout=10)
        pop.stls(context=context); pop.user("brandon"); pop.pass_("abc123")
        print("pop3 stls", pop.stat()[0] >= 1); pop.quit()
        imap = imaplib.IMAP4_SSL("mail.example.com", 993, ssl_context=context, timeout=10)
        imap.login("brandon", "abc123")
        print("imaps", imap.select("INBOX", readonly=True)[0]); imap.logout()
        imap = imaplib.IMAP4("mail.example.com", 143, timeout=10)
        imap.starttls(ssl_context=context); imap.login("brandon", "abc123")
        print("imap starttls", imap.select("INBOX", readonly=True)[0]); imap.logout()
        with urllib.request.urlopen("https://www.example.com/get", timeout=20) as reply:
            print("https", reply.status, json.load(reply)["origin"])
        with socket.create_connection(("ftp.example.com", 23), timeout=10) as telnet:
            seen = b""
            while b"login:" not in seen:
                chunk = telnet.recv(1024)
                if not chunk:
                    break
                seen += chunk
            print("telnet", b"ftp.example.com login:" in seen)
        """,
        timeout=90,
    )
    assert done.stdout.splitlines() == [
        "pop3s True",
        "pop3 stls True",
        "imaps OK",
        "imap starttls OK",
        "https 200 10.25.1.65",
        "telnet True",
    ], done.stderr[-800:]


def test_openssh_client_logs_in_to_every_kind_of_host(playground: Playground) -> None:
    """OpenSSH's ssh(1) on h1, with the lab account's key and the host key pinned from h1's
    known_hosts (strict checking): www in the server room, h2 on the same LAN, modemA."""
    import shutil

    if shutil.which("ssh") is None:
        pytest.skip("OpenSSH's client is not installed")
    home = playground.directory.parent
    key = home / "ssh" / "keys" / "brandon"
    known = playground.host_dir("h1") / "known_hosts"
    for target in ("www.example.com", "h2", "modemA"):
        done = playground.exec(
            "h1",
            [
                "ssh", "-F", "/dev/null", "-i", str(key), "-p", "22",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=10",
                f"brandon@{target}", "echo", f"hello-{target}",
            ],
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, (target, done.stderr[-500:])
        assert done.stdout.strip() == f"hello-{target}"


def test_tour_chapter_selects_the_playground_steps(playground: Playground, tmp_path: Path) -> None:
    """`wirelab tour --playground --chapter 14 --chapter 16` runs those chapters' steps only
    (on the running playground recorded in the state directory); an unknown chapter fails
    before anything is built."""
    from tests.conftest import run_wirelab
    from wirelab.playground.control import STATE_FILE, PlaygroundState

    state = PlaygroundState(
        playground.prefix, os.getpid(), str(playground.directory), playground.nat, {"x": ""}
    )
    (tmp_path / STATE_FILE).write_text(json.dumps(state.to_json()))
    env = dict(os.environ, WIRELAB_HOME=str(tmp_path), NO_COLOR="1", COLUMNS="200")
    done = run_wirelab(
        "tour", "--playground", "--chapter", "14", "--chapter", "16", "--json",
        env=env, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-800:]
    steps = json.loads(done.stdout)["steps"]
    assert [(s["chapter"], s["title"]) for s in steps] == [
        (14, "POP3S on mail"),
        (16, "Telnet on ftp"),
        (16, "SSH on www and h2"),
    ]
    assert all(s["ok"] for s in steps)
    bad = run_wirelab("tour", "--playground", "--chapter", "3", env=env)
    assert bad.returncode == 1
    assert "the playground tour has no chapter 3 (chapters: 2, 4, 6, 7, 9, 13" in bad.stderr


def _udp_client(pg: Playground, *extra: str) -> tuple[int, dict[str, object] | str, float]:
    """Chapter 2's client on h1 against www's UDP server: exit code, JSON (or stderr), seconds."""
    import time

    args = ["udp", "client", "www.example.com", "-p", "1060", "-m", "ping", "--json", *extra]
    started = time.monotonic()
    done = pg.exec("h1", [sys.executable, "-m", "wirelab", *args], timeout=120)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return done.returncode, done.stderr.strip(), seconds
    return 0, json.loads(done.stdout), seconds


def test_loss_makes_chapter2_backoff_retry(playground: Playground) -> None:
    """--loss is an nftables rule (`numgen random`) on both ends of the h1-modemA link.

    At 100% the book's client sends five times, waiting 0.1, 0.2, 0.4, 0.8 and 1.6 s, and
    gives up ("seems to be down") after about 3.1 s. At 50% each way (a quarter of the
    exchanges survive), runs of the client succeed only after retrying.
    """
    try:
        playground.shape("h1", "modemA", loss="100%")
        code, error, seconds = _udp_client(playground)
        assert code == 1 and "seems to be down" in str(error), error
        assert 3.0 < seconds < 60, seconds  # five waits; the rest is start-up
        playground.shape("h1", "modemA", loss="50%")
        rules = playground.exec("h1", ["nft", "list", "ruleset"]).stdout
        assert "numgen random mod 1000 < 500 drop" in rules
        attempts = []
        for _ in range(6):
            code, reply, _ = _udp_client(playground, "--attempts", "40")
            assert code == 0 and isinstance(reply, dict), reply
            attempts.append(int(str(reply["attempts"])))
        # P(all six first tries get through) = 0.25 ** 6, about 1 in 4000
        assert sum(attempts) > len(attempts), attempts
        print(f"attempts per request at 50% loss each way: {attempts}")
    finally:
        playground.shape("h1", "modemA", clear=True)
    code, reply, _ = _udp_client(playground)
    assert code == 0 and isinstance(reply, dict) and reply["attempts"] == 1, reply


def test_delay_without_netem_is_one_clear_error(playground: Playground, tmp_path: Path) -> None:
    """Where the kernel has no sch_netem, `link --delay` exits 1 with one line naming it,
    changes nothing, and --loss/--rate still work."""
    from tests.conftest import run_wirelab
    from wirelab.playground.control import STATE_FILE, PlaygroundState

    if playground.netem_missing() is None:
        pytest.skip("this kernel has sch_netem: test_delay_with_netem covers --delay")
    state = PlaygroundState(playground.prefix, os.getpid(), str(playground.directory), "", {})
    (tmp_path / STATE_FILE).write_text(json.dumps(state.to_json()))
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    home = ["--state-dir", str(tmp_path)]
    done = run_wirelab("playground", "link", *home, "h1", "modemA", "--delay", "50ms", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "wirelab: error: --delay needs the kernel module sch_netem, which this kernel lacks "
        "(tc: Specified qdisc kind is unknown); --loss and --rate work without it"
    ]
    try:
        qdiscs = playground.exec("h1", ["tc", "qdisc", "show", "dev", "eth1"]).stdout
        assert "netem" not in qdiscs and "tbf" not in qdiscs
        ok = run_wirelab("playground", "link", *home, "h1", "modemA", "--rate", "5mbit", env=env)
        assert ok.returncode == 0, ok.stderr
    finally:
        playground.shape("h1", "modemA", clear=True)


def test_delay_with_netem(playground: Playground) -> None:
    """Where sch_netem exists, 100 ms each way on h1-modemA adds about 200 ms to a UDP
    round trip (skipped on kernels built without it, such as the one this was written on)."""
    why = playground.netem_missing()
    if why is not None:
        pytest.skip(why)
    try:
        playground.shape("h1", "modemA", delay="100ms")
        code, reply, _ = _udp_client(playground, "--attempts", "10")
        assert code == 0 and isinstance(reply, dict), reply
        assert float(str(reply["seconds"])) >= 0.2
    finally:
        playground.shape("h1", "modemA", clear=True)
