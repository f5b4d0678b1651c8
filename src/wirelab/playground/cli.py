"""``wirelab playground up|down|status|exec|shell|link``: the book's twelve-host internet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import ChartOption, JsonOption, console, err_console, print_json
from wirelab.config import state_dir as default_state_dir
from wirelab.errors import ConfigError, WirelabError
from wirelab.playground.control import (
    PlaygroundState,
    load_state,
    run_playground,
    state_path,
)
from wirelab.playground.netns import (
    ROOTLESS_ENV,
    Playground,
    check_capability,
    cleanup_prefix,
    list_prefixes,
    parse_loss,
    unshare_argv,
)
from wirelab.playground.topology import HOSTS, path_between

if TYPE_CHECKING:
    from wirelab.playground.steps import Step

app = typer.Typer(
    name="playground",
    help="The book's network playground: twelve hosts, two NAT home LANs, ISP, backbone "
    "and the example.com server room, as Linux network namespaces (root).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Directory of the playground state (default: $WIRELAB_HOME or "
        "~/.local/state/wirelab).",
        file_okay=False,
    ),
]


def _check_host(value: str) -> str:
    """Argument callback: a host the playground does not have is a usage error (exit 2)."""
    if value not in {h.name for h in HOSTS}:
        known = ", ".join(h.name for h in HOSTS)
        raise typer.BadParameter(f"no host {value[:40]!r} in the playground (hosts: {known})")
    return value


def _check_loss(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_loss(value)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


HostArgument = Annotated[
    str,
    typer.Argument(help="A playground host (h1, modemA, www ...).", callback=_check_host),
]
#: Seconds ``up --detach`` waits for the background playground.
DETACH_TIMEOUT = 60.0


def _prefix_pid(prefix: str) -> int:
    """The controller PID a prefix carries (``wl4242`` -> 4242; 0 when it carries none)."""
    digits = prefix[len(prefix.rstrip("0123456789")) :]
    return int(digits) if digits else 0


def _dir(state_dir: Path | None) -> Path:
    return state_dir or default_state_dir()


def _running(state_dir: Path | None) -> PlaygroundState:
    from wirelab.lab.state import pid_alive

    state = load_state(_dir(state_dir))
    if not pid_alive(state.pid):
        raise ConfigError(
            f"the playground {state.prefix} is gone (its controller {state.pid} died); "
            "`wirelab playground down` cleans up"
        )
    return state


def _ready(state: PlaygroundState, seconds: float) -> None:
    err_console.print(
        f"playground {state.prefix} up in {seconds:.1f} s: {len(HOSTS)} hosts, "
        f"NAT by {state.nat}, servers: {', '.join(state.services) or 'none'}"
    )
    err_console.print(
        "try: wirelab playground exec h1 -- python3 -m wirelab.playground.probe "
        "traceroute www.example.com"
    )
    err_console.print("stop it with Ctrl-C or `wirelab playground down`")


@app.command("up")
def up(
    detach: Annotated[
        bool, typer.Option("-d", "--detach", help="Run in the background; return once ready.")
    ] = False,
    bare: Annotated[
        bool, typer.Option("--bare", help="Only the network: start no servers in the hosts.")
    ] = False,
    real: Annotated[
        bool,
        typer.Option(
            "--real",
            help="Real daemons where installed, instead of the lab's servers: dnsmasq on "
            "backbone, vsftpd on ftp, Dovecot on mail, nginx on www, sshd on every host.",
        ),
    ] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Build the playground and keep it up until Ctrl-C (or `down` when detached)."""
    if bare and real:
        raise typer.BadParameter("--bare starts no servers: it cannot be --real")
    rootless = check_capability(rootless_ok=True) == "rootless"
    if rootless and real:
        raise ConfigError(
            "--real needs root: its daemons drop privileges to users a rootless user "
            "namespace does not map"
        )
    directory = _dir(state_dir)
    if not detach and not rootless:
        run_playground(directory, services=not bare, real=real, ready=_ready)
        err_console.print("playground removed")
        return
    directory.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "wirelab.playground.control", str(directory)]
    argv += ["--bare"] if bare else []
    argv += ["--real"] if real else []
    env = None
    if rootless:  # the controller runs as root of a user namespace of its own
        argv = [*unshare_argv(), *argv]
        env = {**os.environ, ROOTLESS_ENV: "1"}
    if not detach:
        raise typer.Exit(_foreground(argv, env))
    log_path = directory / "playground.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            raise WirelabError(lines[-1] if lines else "the playground stopped at start-up")
        try:
            state = load_state(directory)
        except ConfigError:
            state = None
        if state is not None and state.pid == child.pid:
            console.print(f"playground {state.prefix} running (pid {state.pid})")
            return
        time.sleep(0.1)
    child.terminate()
    raise WirelabError(f"the playground was not up in {DETACH_TIMEOUT:g} s")


def _foreground(argv: list[str], env: dict[str, str] | None) -> int:
    """Run a (rootless) controller in the foreground until it ends; Ctrl-C reaches it too."""
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # the controller got the same Ctrl-C and is cleaning up
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("down")
def down(
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="Also remove every playground on this machine whose controller is gone "
            "(a crashed run), found by its wl<pid> prefix.",
        ),
    ] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Stop the playground: every server, namespace, bridge and link it made."""
    from wirelab.lab.state import pid_alive

    directory = _dir(state_dir)
    if stale:
        check_capability()
        removed = [p for p in list_prefixes() if not pid_alive(_prefix_pid(p))]
        for prefix in removed:
            cleanup_prefix(prefix)
        console.print(
            f"removed {len(removed)} stale playground(s){': ' if removed else ''}"
            + ", ".join(removed)
        )
        if not state_path(directory).exists():
            return
    state = load_state(directory)
    if pid_alive(state.pid):
        os.kill(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    left = cleanup_prefix(state.prefix)
    state_path(directory).unlink(missing_ok=True)
    console.print(
        f"playground {state.prefix} removed" + (f" ({len(left)} left-overs)" if left else "")
    )


@app.command("status")
def status(
    json_output: JsonOption = False,
    chart: ChartOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show the running playground as its namespaces really are (and draw it with --chart)."""
    from wirelab.playground.picture import draw_png, live_state, text_diagram

    state = _running(state_dir)
    live = live_state(state.playground())
    if chart is not None:
        draw_png(live, chart)
        err_console.print(f"wrote {chart}")
    if json_output:
        print_json({**state.to_json(), **live})
        return
    console.print(f"playground {state.prefix} (pid {state.pid}, NAT by {state.nat})")
    console.print(text_diagram(live), markup=False)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    host: HostArgument,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
    state_dir: StateDirOption = None,
) -> None:
    """Run a command in a host: `wirelab playground exec h1 -- ip route`."""
    pg = _running(state_dir).playground()
    argv = pg.argv(host, command)
    try:
        code = subprocess.call(argv, env=pg.env(host))
    except OSError as exc:
        raise WirelabError(f"cannot run {command[0][:60]} in {host}: {exc.strerror}") from exc
    raise typer.Exit(code)


@app.command("shell")
def shell(host: HostArgument, state_dir: StateDirOption = None) -> None:
    """Open an interactive shell in a host."""
    pg = _running(state_dir).playground()
    argv = pg.argv(host, [os.environ.get("SHELL", "/bin/sh"), "-i"])
    env = dict(pg.env(host), PS1=f"{host}# ")
    raise typer.Exit(subprocess.call(argv, env=env))


@app.command("link")
def link(
    a: Annotated[str, typer.Argument(help="One host.", callback=_check_host)],
    b: Annotated[str, typer.Argument(help="A neighbour of that host.", callback=_check_host)],
    delay: Annotated[str | None, typer.Option("--delay", help="Added delay: 50ms.")] = None,
    loss: Annotated[
        str | None, typer.Option("--loss", help="Packets lost: 10%.", callback=_check_loss)
    ] = None,
    rate: Annotated[str | None, typer.Option("--rate", help="Bandwidth: 1mbit.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every fault.")] = False,
    json_output: JsonOption = False,
    state_dir: StateDirOption = None,
) -> None:
    """Add delay, loss or a rate limit between two neighbours (tc netem), or --clear them."""
    if not path_between(a, b):
        raise typer.BadParameter(f"{a} and {b} are not neighbours in the playground")
    if not clear and not (delay or loss or rate):
        raise typer.BadParameter("say --delay, --loss or --rate (or --clear)")
    changed = (
        _running(state_dir).playground().shape(a, b, delay=delay, loss=loss, rate=rate, clear=clear)
    )
    if json_output:
        print_json(
            {
                "a": a,
                "b": b,
                "delay": delay,
                "loss": loss,
                "rate": rate,
                "clear": clear,
                "interfaces": changed,
            }
        )
        return
    what = (
        "cleared"
        if clear
        else ", ".join(
            f"{k} {v}" for k, v in (("delay", delay), ("loss", loss), ("rate", rate)) if v
        )
    )
    console.print(f"{a} <-> {b}: {what} on {', '.join(changed)}")


@app.command("tour")
def tour(
    chapter: Annotated[
        list[int] | None,
        typer.Option("--chapter", help="Run only this chapter's steps (repeatable)."),
    ] = None,
    json_output: JsonOption = False,
    state_dir: StateDirOption = None,
) -> None:
    """Run the book's chapter steps from h1 through NAT to the server room, and check them.

    Uses the running playground, else builds a private one for the tour and removes it after.
    """
    run_tour(json_output=json_output, state_dir=state_dir, chapters=chapter)


def run_tour(
    *,
    json_output: bool = False,
    state_dir: Path | None = None,
    chapters: list[int] | None = None,
) -> None:
    """The playground tour (also ``wirelab tour --playground [--chapter N ...]``)."""
    from wirelab.playground.control import private_playground
    from wirelab.playground.steps import select

    steps = select(chapters)  # an unknown chapter fails before anything is built
    try:
        state: PlaygroundState | None = _running(state_dir)
    except ConfigError:
        state = None
    if state is not None:
        if not state.services:
            raise ConfigError("the playground runs no servers (it was started with --bare)")
        _tour(state.playground(), json_output, steps)
        return
    check_capability()
    if not json_output:
        err_console.print("no playground is running: building a private one for the tour")
    with private_playground(_dir(state_dir)) as pg:
        _tour(pg, json_output, steps)


def _tour(pg: Playground, json_output: bool, steps: Sequence[Step]) -> None:
    from wirelab.playground.steps import run_steps

    results = []
    for result in run_steps(pg, steps):
        results.append(result)
        if not json_output:
            mark = "ok" if result.ok else "FAILED"
            console.print(f"ch. {result.chapter:<2} {result.title}: {mark}", markup=False)
            console.print(f"  $ {result.command}", markup=False)
            for line in result.output.splitlines()[:12]:
                console.print(f"    {line}", markup=False)
            if result.why:
                console.print(f"  -> {result.why}", markup=False)
    if json_output:
        print_json({"ok": all(r.ok for r in results), "steps": [r.to_json() for r in results]})
    failed = [r.title for r in results if not r.ok]
    if failed:
        raise WirelabError(
            f"{len(failed)} step(s) did not show what the book shows: {', '.join(failed)}"
        )
