"""The book's chapters in the playground: steps run from ``h1`` through NAT to the server room.

Each step runs a real ``wirelab`` command inside a host (``ip netns exec``) and checks what
the book says the playground shows: the server sees the modem's address, the path MTU is
1500, the backbone's DNS knows example.com, broadcasts stay on their LAN, and the route from
h1 to www crosses modemA, isp, backbone and example.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirelab.errors import ConfigError
from wirelab.playground.netns import Playground

__all__ = [
    "BOOK_PATH",
    "CHAPTER_STEPS",
    "Step",
    "StepResult",
    "chapters",
    "run_steps",
    "select",
    "wirelab_in",
]

#: What a traceroute from h1 to www shows (the book's expected path).
BOOK_PATH = ("192.168.1.1", "10.25.1.1", "10.1.1.1", "10.130.1.1", "10.130.1.4")
#: The port the broadcast step listens on.
BROADCAST_PORT = "1070"


@dataclass(frozen=True)
class StepResult:
    """One step's outcome: what ran, what it printed, and whether the book's claim held."""

    chapter: int
    title: str
    command: str
    output: str
    ok: bool
    why: str

    def to_json(self) -> dict[str, object]:
        return {
            "chapter": self.chapter,
            "title": self.title,
            "command": self.command,
            "output": self.output,
            "ok": self.ok,
            "why": self.why,
        }


Step = Callable[[Playground, Path], StepResult]


def wirelab_in(pg: Playground, host: str, args: Sequence[str], home: Path) -> list[str]:
    """``ip netns exec NS python -m wirelab ARGS`` with a lab home of the host's own."""
    return pg.argv(host, ["env", f"WIRELAB_HOME={home}", sys.executable, "-m", "wirelab", *args])


def _run(
    pg: Playground,
    host: str,
    args: Sequence[str],
    home: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    done = subprocess.run(
        wirelab_in(pg, host, args, home),
        capture_output=True,
        text=True,
        timeout=60,
        env={**pg.env(host), **(env or {})},
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def _shown(host: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    where = "".join(f"{k}={v} " for k, v in (env or {}).items())
    command = f"{'env ' if where else ''}{where}wirelab {shlex.join(args)}"
    return f"wirelab playground exec {host} -- {command}"


def _json(out: str) -> Any:
    """The JSON document a ``--json`` command printed (after any stderr line), else None."""
    starts = [i for i in (out.find("{"), out.find("[")) if i >= 0]
    try:
        return json.loads(out[min(starts) :]) if starts else None
    except ValueError:
        return None


def step_nat(pg: Playground, home: Path) -> StepResult:
    """Chapter 2: a UDP request from h1; www's log shows the modem's address, not h1's."""
    args = ["udp", "client", "www.example.com", "-p", "1060", "--json"]
    code, out = _run(pg, "h1", args, home)
    log = pg.host_dir("www") / "udp.log"
    seen = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    ok = code == 0 and "10.25.1.65:" in seen and "192.168.1.11" not in seen
    why = "www saw 10.25.1.65 (modemA), not 192.168.1.11" if ok else f"www's log: {seen[-200:]}"
    return StepResult(2, "the server sees the modem's address", _shown("h1", args), out, ok, why)


def step_mtu(pg: Playground, home: Path) -> StepResult:
    """Chapter 2: big_sender's MTU probe from h1 to www reports 1500."""
    args = ["udp", "mtu", "www.example.com", "-p", "1060", "--json"]
    code, out = _run(pg, "h1", args, home)
    try:
        mtu = json.loads(out[out.index("{") :])["mtu"] if code == 0 else None
    except (ValueError, KeyError):
        mtu = None
    return StepResult(2, "the path MTU is 1500", _shown("h1", args), out, mtu == 1500, f"mtu {mtu}")


def step_broadcast(pg: Playground, home: Path) -> StepResult:
    """Chapter 2: a broadcast from h1 reaches h2 and h3 on homeA, never h4 on homeB."""
    # h4 waits its whole timeout; h2 and h3 return at the broadcast, which a loaded machine
    # may take seconds to send (the client's start-up)
    listen = ["udp", "listen", "0.0.0.0", "-p", BROADCAST_PORT, "-t", "12", "--json"]
    listeners = {
        h: subprocess.Popen(
            wirelab_in(pg, h, listen, home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=pg.env(h),
        )
        for h in ("h2", "h3", "h4")
    }
    try:
        _wait_bound(pg, ("h2", "h3", "h4"), int(BROADCAST_PORT))
        args = ["udp", "broadcast", "192.168.1.255", "-p", BROADCAST_PORT, "--json"]
        code, out = _run(pg, "h1", args, home)
        heard = {}
        for h, proc in listeners.items():
            stdout, _ = proc.communicate(timeout=30)
            heard[h] = "192.168.1.11" in stdout
    finally:
        for proc in listeners.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    ok = code == 0 and heard == {"h2": True, "h3": True, "h4": False}
    why = ", ".join(f"{h} {'heard it' if v else 'heard nothing'}" for h, v in heard.items())
    return StepResult(2, "broadcasts stay on homeA", _shown("h1", args), out, ok, why)


def _wait_bound(pg: Playground, hosts: Sequence[str], port: int, timeout: float = 20) -> None:
    """Wait until a UDP socket is bound to ``port`` in each host (``ss`` in the namespace)."""
    deadline = time.monotonic() + timeout
    waiting = list(hosts)
    while waiting and time.monotonic() < deadline:
        for h in list(waiting):
            done = subprocess.run(
                pg.argv(h, ["ss", "-Hlun", f"sport = :{port}"]),
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if done.stdout.strip():
                waiting.remove(h)
        time.sleep(0.1)


def step_dns(pg: Playground, home: Path) -> StepResult:
    """Chapter 4: the backbone's DNS gives example.com's MX: mail.example.com, 10.130.1.3."""
    args = ["dns", "mx", "example.com", "-s", "10.1.1.1", "--json"]
    code, out = _run(pg, "h1", args, home)
    ok = code == 0 and "mail.example.com" in out and "10.130.1.3" in out
    return StepResult(4, "DNS on the backbone", _shown("h1", args), out, ok, "MX 10 mail")


def step_zen(pg: Playground, home: Path) -> StepResult:
    """Chapter 7: the zen server on ftp answers h1 over TCP through the NAT."""
    args = ["zen", "client", "ftp.example.com", "-p", "1060"]
    code, out = _run(pg, "h1", args, home)
    ok = code == 0 and "Beautiful is better than? Ugly." in out
    return StepResult(7, "TCP through NAT to the server room", _shown("h1", args), out, ok, "")


def step_http(pg: Playground, home: Path) -> StepResult:
    """Chapter 9: httpbin on www, asked from h1, reports its caller as modemA."""
    args = ["http", "get", "http://www.example.com/get"]
    code, out = _run(pg, "h1", args, home)
    ok = code == 0 and '"origin": "10.25.1.65"' in out
    why = "httpbin saw origin 10.25.1.65" if ok else "origin not 10.25.1.65"
    return StepResult(9, "httpbin on www sees the modem", _shown("h1", args), out, ok, why)


def step_smtp(pg: Playground, home: Path) -> StepResult:
    """Chapter 13: mail.example.com:25 greets h1 and upgrades to verified TLS."""
    args = ["smtp", "ehlo", "mail.example.com", "-p", "25", "--starttls", "--json"]
    code, out = _run(pg, "h1", args, home)
    try:
        tls = json.loads(out[out.index("{") :]).get("tls") if code == 0 else None
    except ValueError:
        tls = None
    ok = tls is True
    why = "STARTTLS verified against the lab CA" if ok else f"tls {tls}"
    return StepResult(13, "SMTP with STARTTLS on mail", _shown("h1", args), out, ok, why)


def step_tls(pg: Playground, home: Path) -> StepResult:
    """Chapter 6: the book's ``test_tls.py www.example.com 443``: www's certificate verifies
    against the CA the host trusts, and names www.example.com."""
    args = ["tls", "inspect", "www.example.com", "-p", "443", "--json"]
    code, out = _run(pg, "h1", args, home)
    doc = _json(out) if code == 0 else None
    report = doc if isinstance(doc, dict) else {}
    ok = report.get("trusted") is True and report.get("name_match") == "www.example.com"
    version = (report.get("session") or {}).get("version")
    why = f"trusted, names www.example.com, {version}" if ok else f"{report.get('verdict')}"
    return StepResult(6, "TLS on www:443, verified", _shown("h1", args), out, ok, why)


def step_https(pg: Playground, home: Path) -> StepResult:
    """Chapters 6 and 9: httpbin over HTTPS on www:443, verified against the lab CA."""
    args = ["http", "get", "https://www.example.com/get"]
    code, out = _run(pg, "h1", args, home)
    ok = code == 0 and '"origin": "10.25.1.65"' in out
    why = "verified TLS, origin 10.25.1.65" if ok else "no verified reply with origin 10.25.1.65"
    return StepResult(9, "HTTPS on www, verified", _shown("h1", args), out, ok, why)


def step_pop3(pg: Playground, home: Path) -> StepResult:
    """Chapter 14: POP3S on mail:995, brandon/abc123, counts the seeded mailbox."""
    env = {"WIRELAB_POP_PASSWORD": "abc123"}
    args = ["pop", "stat", "mail.example.com", "-p", "995", "-u", "brandon", "--json"]
    code, out = _run(pg, "h1", args, home, env)
    doc = _json(out) if code == 0 else None
    count = doc.get("messages") if isinstance(doc, dict) else None
    ok = isinstance(count, int) and count >= 1
    why = "POP3S verified, brandon's mailbox has messages" if ok else f"messages {count}"
    return StepResult(14, "POP3S on mail", _shown("h1", args, env), out, ok, why)


def step_imap(pg: Playground, home: Path) -> StepResult:
    """Chapter 15: IMAPS on mail:993 lists brandon's folders: INBOX."""
    env = {"WIRELAB_IMAP_PASSWORD": "abc123"}
    args = ["imap", "folders", "mail.example.com", "-p", "993", "-u", "brandon", "--json"]
    code, out = _run(pg, "h1", args, home, env)
    doc = _json(out) if code == 0 else None
    folders = [f.get("name") for f in doc.get("folders", [])] if isinstance(doc, dict) else []
    ok = "INBOX" in folders
    why = "IMAPS verified, folder INBOX" if ok else f"folders {folders}"
    return StepResult(15, "IMAPS on mail", _shown("h1", args, env), out, ok, why)


def step_telnet(pg: Playground, home: Path) -> StepResult:
    """Chapter 16: Telnet on ftp:23, log in as brandon and run a command (cleartext)."""
    env = {"WIRELAB_TELNET_PASSWORD": "abc123"}
    args = ["telnet", "login", "ftp.example.com", "brandon", "-p", "23", "-m", "echo hello"]
    code, out = _run(pg, "h1", [*args, "--json"], home, env)
    doc = _json(out) if code == 0 else None
    output = doc.get("output") if isinstance(doc, dict) else None
    ok = output == "hello\n"
    why = "logged in to ftp.example.com, ran echo" if ok else f"output {output!r}"
    return StepResult(16, "Telnet on ftp", _shown("h1", args, env), out, ok, why)


def step_ssh(pg: Playground, home: Path) -> StepResult:
    """Chapter 16: SSH on www:22 and on h2:22 (every host runs SSH), host key pinned."""
    env = {"WIRELAB_SSH_PASSWORD": "abc123"}
    known = str(pg.host_dir("h1") / "known_hosts")
    outputs, codes = [], []
    for target in ("www.example.com", "h2"):
        args = ["ssh", "run", target, "-p", "22", "-u", "brandon", "--known-hosts", known]
        code, out = _run(pg, "h1", [*args, "-m", "echo hello", "--json"], home, env)
        doc = _json(out) if code == 0 else None
        codes.append(code == 0 and "hello" in json.dumps(doc))
        outputs.append(out)
    ok = all(codes)
    why = "www and h2 answered with the pinned host key" if ok else f"ok: {codes}"
    shown = _shown("h1", ["ssh", "run", "www.example.com", "-p", "22", "-m", "echo hello"], env)
    return StepResult(16, "SSH on www and h2", shown, "\n".join(outputs), ok, why)


def step_ftp(pg: Playground, home: Path) -> StepResult:
    """Chapter 17: anonymous FTP on ftp:21 lists /pub (passive data through the NAT)."""
    args = ["ftp", "ls", "/pub", "--host", "ftp.example.com", "-p", "21", "-u", "anonymous"]
    code, out = _run(pg, "h1", [*args, "--json"], home)
    names = _json(out) if code == 0 else None
    ok = isinstance(names, list) and bool(names)
    why = f"/pub holds {', '.join(map(str, names))}" if ok and names else "no listing"
    return StepResult(17, "anonymous FTP on ftp", _shown("h1", args), out, ok, why)


def step_traceroute(pg: Playground, home: Path) -> StepResult:
    """The route from h1 to www: modemA, isp, backbone, example, www."""
    del home
    argv = [sys.executable, "-m", "wirelab.playground.probe", "traceroute", "www.example.com"]
    done = pg.exec("h1", argv, timeout=60)
    hops = [line.split()[1] for line in done.stdout.splitlines() if line.strip()]
    ok = tuple(hops) == BOOK_PATH
    shown = "wirelab playground exec h1 -- python -m wirelab.playground.probe traceroute www"
    return StepResult(
        2, "the hops from h1 to www", shown, done.stdout.rstrip(), ok, " -> ".join(hops)
    )


#: Every step with the chapter it belongs to, in the tour's order.
CHAPTER_STEPS: tuple[tuple[int, Step], ...] = (
    (2, step_nat),
    (2, step_mtu),
    (2, step_broadcast),
    (2, step_traceroute),
    (4, step_dns),
    (6, step_tls),
    (7, step_zen),
    (9, step_http),
    (9, step_https),
    (13, step_smtp),
    (14, step_pop3),
    (15, step_imap),
    (16, step_telnet),
    (16, step_ssh),
    (17, step_ftp),
)
STEPS: tuple[Step, ...] = tuple(step for _, step in CHAPTER_STEPS)


def chapters() -> list[int]:
    """The chapters the playground tour has steps for."""
    return sorted({number for number, _ in CHAPTER_STEPS})


def select(numbers: Sequence[int] | None) -> list[Step]:
    """The steps of chapters ``numbers`` (every step when none); an unknown chapter is an error."""
    if not numbers:
        return list(STEPS)
    missing = sorted(set(numbers) - set(chapters()))
    if missing:
        have = ", ".join(map(str, chapters()))
        raise ConfigError(f"the playground tour has no chapter {missing[0]} (chapters: {have})")
    return [step for number, step in CHAPTER_STEPS if number in numbers]


def run_steps(pg: Playground, steps: Sequence[Step] = STEPS) -> Iterator[StepResult]:
    """Run each step in a playground whose servers are up; yield results as they come."""
    with tempfile.TemporaryDirectory(prefix="wirelab-pg-") as home:
        for step in steps:
            yield step(pg, Path(home))
