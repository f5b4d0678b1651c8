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
from wirelab.playground.netns import Playground, check_capability, cleanup_prefix

__all__ = [
    "STATE_FILE",
    "PlaygroundState",
    "host_servers",
    "load_state",
    "main",
    "private_playground",
    "run_playground",
    "start_reaper",
    "start_services",
]

STATE_FILE = "playground.json"
#: Seconds the servers get to say "listening at".
SERVICE_TIMEOUT = 20.0
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

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "pid": self.pid,
            "directory": self.directory,
            "nat": self.nat,
            "services": self.services,
        }

    def playground(self) -> Playground:
        """A handle on the running playground (to exec in it, shape links)."""
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


def _wirelab(*args: str) -> list[str]:
    return [sys.executable, "-m", "wirelab", *args]


def host_servers(home: Path) -> list[tuple[str, str, list[str]]]:
    """``(host, label, argv)`` of every server the playground runs, as the book's hosts did.

    Each prints "listening at" once ready. ``home`` is the lab directory the lab's servers use
    (its CA, the mail store), shared by every host.
    """
    lab = ["env", f"WIRELAB_HOME={home}", sys.executable, "-m", "wirelab"]
    return [
        ("backbone", "dns", [sys.executable, "-m", "wirelab.playground.hostd", "dns"]),
        ("www", "udp", [*lab, "udp", "serve", "0.0.0.0", "-p", BOOK_PORT]),
        ("www", "http", [*lab, "http", "serve", "0.0.0.0", "-p", "80", "--app", "httpbin"]),
        ("ftp", "zen", [*lab, "zen", "serve", "0.0.0.0", "-p", BOOK_PORT]),
        ("ftp", "ftp", [*lab, "ftp", "serve", "0.0.0.0", "-p", "21"]),
        ("mail", "smtp", [*lab, "smtp", "serve", "0.0.0.0", "-p", "25"]),
    ]


def start_services(
    pg: Playground, home: Path, *, real: bool = False, timeout: float = SERVICE_TIMEOUT
) -> dict[str, str]:
    """Start every host's servers and wait until each is ready.

    A lab server is ready when its log says "listening at"; with ``real``, the installed
    daemons of :mod:`wirelab.playground.real` replace the lab's FTP and web servers, and are
    ready when their port listens inside their host.
    """
    from wirelab.playground.real import real_servers

    plan: list[tuple[str, str, list[str], int | None]] = []
    daemons = real_servers(pg.directory) if real else []
    taken = {(host, port) for host, _, _, port in daemons}
    lab_ports = {"www/http": 80, "ftp/ftp": 21}
    for name, label, argv in host_servers(home):
        if (name, lab_ports.get(f"{name}/{label}")) not in taken:
            plan.append((name, label, argv, None))
    plan += daemons
    started = {}
    for name, label, argv, _ in plan:
        pg.spawn(name, argv, label=label)
        started[f"{name}/{label}"] = str(pg.host_dir(name) / f"{label}.log")
    deadline = time.monotonic() + timeout
    waiting = {f"{name}/{label}": port for name, label, _, port in plan}
    while waiting:
        for key, port in list(waiting.items()):
            text = Path(started[key]).read_text(encoding="utf-8", errors="replace")
            host = key.split("/")[0]
            if (port is None and "listening at" in text) or (
                port is not None and _listening(pg, host, port)
            ):
                del waiting[key]
            elif pg.processes[key].poll() is not None:
                last = text.strip().splitlines()[-1:] or ["no output"]
                raise WirelabError(f"the {key} server stopped at start-up: {last[0][:200]}")
        if time.monotonic() > deadline:
            raise WirelabError(f"servers not ready in {timeout:g} s: {', '.join(waiting)}")
        time.sleep(0.1)
    return started


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
    state_dir.mkdir(parents=True, exist_ok=True)
    pg = Playground(prefix, state_dir / "playground" / prefix)
    reaper = start_reaper(prefix, os.getpid(), pg.directory)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    began = time.monotonic()
    try:
        pg.up(_ca_files(state_dir))
        started = start_services(pg, state_dir, real=real) if services else {}
        state = PlaygroundState(prefix, os.getpid(), str(pg.directory), pg.nat, started)
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
