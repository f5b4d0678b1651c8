"""The controlling process of a playground: build it, start its servers, record its state.

:func:`run_playground` builds the playground, starts the servers of each host inside their
namespaces, writes ``playground.json`` in the state directory, and keeps everything up until
Ctrl-C or SIGTERM; then it removes everything. A reaper process removes everything too if
the controller dies without cleaning up (SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wirelab.errors import ConfigError, WirelabError
from wirelab.playground.netns import (
    ROOTLESS_ENV,
    Playground,
    check_capability,
    cleanup_prefix,
    enter_argv,
    private_mounts,
)
from wirelab.playground.topology import HOSTS

__all__ = [
    "STATE_FILE",
    "HostServer",
    "PlaygroundState",
    "host_servers",
    "known_hosts_patterns",
    "lab_plan",
    "load_state",
    "main",
    "private_playground",
    "run_playground",
    "start_reaper",
    "start_services",
    "write_known_hosts",
]

STATE_FILE = "playground.json"
#: Seconds the servers get to say "listening at".
SERVICE_TIMEOUT = 45.0
#: The chapter 2 and chapter 7 port of the book's examples.
BOOK_PORT = "1060"


@dataclass(frozen=True)
class PlaygroundState:
    """What ``playground.json`` records about a running playground."""

    prefix: str
    pid: int
    directory: str
    nat: str
    services: dict[str, str]
    #: Built by an unprivileged user inside a user namespace (entered with nsenter).
    rootless: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "pid": self.pid,
            "directory": self.directory,
            "nat": self.nat,
            "services": self.services,
            "rootless": self.rootless,
        }

    def playground(self) -> Playground:
        """A handle on the running playground (to exec in it, shape links)."""
        if self.rootless:
            enter = tuple(enter_argv(self.pid))
            return Playground(self.prefix, Path(self.directory), enter=enter, rootless=True)
        return Playground(self.prefix, Path(self.directory))


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> PlaygroundState:
    """The running playground recorded in ``state_dir``, or a clear error."""
    path = state_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = PlaygroundState(
            prefix=str(data["prefix"]),
            pid=int(data["pid"]),
            directory=str(data["directory"]),
            nat=str(data.get("nat", "")),
            services={str(k): str(v) for k, v in dict(data.get("services", {})).items()},
            rootless=bool(data.get("rootless", False)),
        )
    except FileNotFoundError:
        raise ConfigError(
            "no playground is running (start one with `wirelab playground up --detach`)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"unreadable playground state {path}: {exc}") from exc
    return state


def start_reaper(prefix: str, pid: int, directory: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the process that cleans ``prefix`` (and ``directory``) up once ``pid`` is gone."""
    extra = [str(directory)] if directory is not None else []
    return subprocess.Popen(
        [sys.executable, "-m", "wirelab.playground.reaper", prefix, str(pid), *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@dataclass(frozen=True)
class HostServer:
    """One server process the playground starts in a host.

    Attributes:
        host: the host whose namespace it is started in.
        label: its name in the host directory's logs (``LABEL.log``).
        argv: the command.
        ready: a line its log shows once it serves, or a TCP port that then listens in ``host``.
        provides: the ``host/service`` keys it serves (``mail/pop3``, ``h1/ssh`` ...).
    """

    host: str
    label: str
    argv: list[str]
    ready: str | int
    provides: tuple[str, ...]


def lab_plan() -> dict[str, tuple[str, ...]]:
    """Which lab services run in which host, as the book's section 3.4 had them.

    The server room: SMTP, POP3 and IMAP on mail; httpbin over HTTP and HTTPS on www; FTP and
    Telnet on ftp; and SSH on every host (the book's OpenSSH everywhere).
    """
    room = {"mail": ("smtp", "pop3", "imap"), "www": ("www",), "ftp": ("ftp", "telnet")}
    return {h.name: (*room.get(h.name, ()), "ssh") for h in HOSTS}


def host_servers(
    home: Path, prefix: str, replaced: frozenset[str] = frozenset()
) -> list[HostServer]:
    """Every server the playground runs, as the book's hosts did, but those ``replaced``.

    Each is ready once its log says "listening at" (the lab process: once every host is
    ready). ``home`` is the lab directory the lab's servers use (its CA, the mail store, the
    SSH host key), shared by every host; ``replaced`` holds ``host/service`` keys a real
    daemon serves instead (``--real``).
    """
    from wirelab.playground.hostd import READY

    hostd = [sys.executable, "-m", "wirelab.playground.hostd"]
    servers = []
    if "backbone/dns" not in replaced:
        servers.append(
            HostServer("backbone", "dns", [*hostd, "dns"], "listening at", ("backbone/dns",))
        )
    servers += [
        HostServer(
            "www", "udp", [*hostd, "udp", "0.0.0.0", BOOK_PORT], "listening at", ("www/udp",)
        ),
        HostServer(
            "ftp", "zen", [*hostd, "zen", "0.0.0.0", BOOK_PORT], "listening at", ("ftp/zen",)
        ),
    ]
    plan = {
        host: kept
        for host, names in lab_plan().items()
        if (kept := tuple(n for n in names if f"{host}/{n}" not in replaced))
    }
    if plan:
        words = [f"{host}={','.join(names)}" for host, names in plan.items()]
        argv = [*hostd, "lab", prefix, str(home)]
        provides = tuple(f"{host}/{n}" for host, names in plan.items() for n in names)
        servers.append(HostServer("mail", "lab", [*argv, *words], READY, provides))
    return servers


def start_services(
    pg: Playground, home: Path, *, real: bool = False, timeout: float = SERVICE_TIMEOUT
) -> dict[str, str]:
    """Start every host's servers and wait until each is ready; ``{host/service: log}``.

    A lab server is ready when its log says so; with ``real``, the installed daemons of
    :mod:`wirelab.playground.real` replace the lab's servers they stand for, and are ready
    when their port listens inside their host.
    """
    from wirelab.playground.real import real_servers

    daemons = real_servers(pg.directory, home, pg.prefix) if real else []
    replaced = frozenset(key for d in daemons for key in d.replaces)
    plan = host_servers(home, pg.prefix, replaced) + [d.server for d in daemons]
    started = {}
    logs = {}
    for server in plan:
        pg.spawn(server.host, server.argv, label=server.label)
        log = logs[f"{server.host}/{server.label}"] = (
            pg.host_dir(server.host) / f"{server.label}.log"
        )
        for key in server.provides:
            started[key] = str(log)
    deadline = time.monotonic() + timeout
    waiting = {f"{s.host}/{s.label}": s for s in plan}
    while waiting:
        for key, server in list(waiting.items()):
            text = logs[key].read_text(encoding="utf-8", errors="replace")
            if (isinstance(server.ready, str) and server.ready in text) or (
                isinstance(server.ready, int) and _listening(pg, server.host, server.ready)
            ):
                del waiting[key]
            elif pg.processes[key].poll() is not None:
                last = text.strip().splitlines()[-1:] or ["no output"]
                raise WirelabError(f"the {key} server stopped at start-up: {last[0][:200]}")
        if time.monotonic() > deadline:
            raise WirelabError(f"servers not ready in {timeout:g} s: {', '.join(waiting)}")
        time.sleep(0.1)
    keys = [d.host_key for d in daemons if d.host_key] if real else []
    if not keys and any(key.endswith("/ssh") for key in started):
        from wirelab.ssh.keys import host_key

        keys.append(host_key(home).export_public_key().decode().strip())
    if keys:
        write_known_hosts(pg, keys[0])
    return started


def known_hosts_patterns() -> str:
    """Every name and address of the playground's hosts, as one known_hosts pattern list."""
    names = {h.name for h in HOSTS} | {h.fqdn for h in HOSTS} | {"*.example.com"}
    names |= {a.split("/")[0] for h in HOSTS for v in h.addresses.values() for a in v}
    return ",".join(sorted(names))


def write_known_hosts(pg: Playground, public_key: str) -> None:
    """Pin the SSH host key every host presents on port 22 in each host's ``known_hosts``."""
    line = f"{known_hosts_patterns()} {public_key}\n"
    for h in HOSTS:
        (pg.host_dir(h.name) / "known_hosts").write_text(line, encoding="ascii")


def _listening(pg: Playground, host: str, port: int) -> bool:
    done = subprocess.run(
        pg.argv(host, ["ss", "-Hltn", f"sport = :{port}"]),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return bool(done.stdout.strip())


def _ca_files(state_dir: Path) -> dict[str, bytes]:
    from wirelab.net.ca import LabCA

    ca = LabCA.load_or_create(state_dir / "ca")
    return {"ca.crt": ca.cert_pem}


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def run_playground(
    state_dir: Path,
    *,
    services: bool = True,
    real: bool = False,
    ready: Callable[[PlaygroundState, float], None] | None = None,
) -> None:
    """Build the playground and keep it up until Ctrl-C or SIGTERM; then remove it all."""
    check_capability()
    prefix = f"wl{os.getpid()}"
    path = state_path(state_dir)
    if path.exists():
        try:
            old = load_state(state_dir)
        except ConfigError:
            old = None
        if old is not None and _alive(old.pid):
            raise ConfigError(f"a playground is already running ({old.prefix}, pid {old.pid})")
        if old is not None:
            cleanup_prefix(old.prefix)
        path.unlink(missing_ok=True)
    rootless = os.environ.get(ROOTLESS_ENV) == "1"
    if rootless and real:
        raise ConfigError(
            "--real needs root: its daemons drop privileges to users a rootless user "
            "namespace does not map"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    pg = Playground(prefix, state_dir / "playground" / prefix, rootless=rootless)
    reaper = start_reaper(prefix, os.getpid(), pg.directory)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    began = time.monotonic()
    try:
        pg.up(_ca_files(state_dir))
        started = start_services(pg, state_dir, real=real) if services else {}
        state = PlaygroundState(
            prefix, os.getpid(), str(pg.directory), pg.nat, started, rootless=rootless
        )
        path.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
        if ready is not None:
            ready(state, time.monotonic() - began)
        while True:
            signal.pause()
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        path.unlink(missing_ok=True)
        pg.down()
        reaper.terminate()
        reaper.wait(timeout=5)


@contextlib.contextmanager
def private_playground(state_dir: Path) -> Iterator[Playground]:
    """A playground with its servers for the length of a ``with`` block (a reaper guards it)."""
    check_capability()
    prefix = f"wl{os.getpid()}"
    pg = Playground(prefix, state_dir / "playground" / prefix)
    reaper = start_reaper(prefix, os.getpid(), pg.directory)
    try:
        pg.up(_ca_files(state_dir))
        start_services(pg, state_dir)
        yield pg
    finally:
        pg.down()
        reaper.terminate()
        reaper.wait(timeout=5)


def _alive(pid: int) -> bool:
    from wirelab.lab.state import pid_alive

    return pid_alive(pid)


def _print_ready(state: PlaygroundState, seconds: float) -> None:
    print(
        f"playground {state.prefix} up in {seconds:.1f} s (NAT by {state.nat})",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m wirelab.playground.control STATE_DIR [--bare] [--real]``: detached controller.

    What ``wirelab playground up --detach`` starts in the background: the same controller
    as ``up`` in the foreground, without the CLI's start-up cost.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-") or set(args[1:]) - {"--bare", "--real"}:
        print(
            "usage: python -m wirelab.playground.control STATE_DIR [--bare] [--real]",
            file=sys.stderr,
        )
        return 2
    try:
        if os.environ.get(ROOTLESS_ENV) == "1":
            private_mounts()  # our own /run/netns and /etc/netns, in our mount namespace
        run_playground(
            Path(args[0]),
            services="--bare" not in args,
            real="--real" in args,
            ready=_print_ready,
        )
    except WirelabError as exc:
        print(f"wirelab: error: {exc}", file=sys.stderr)
        return 1
    print("playground removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
