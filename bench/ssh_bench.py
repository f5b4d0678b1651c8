"""Benchmark for chapter 16: SFTP download and upload over loopback, OpenSSH's ``sftp`` client
against the lab server (asyncssh) and against OpenSSH's sshd, with raw loopback TCP as the
ceiling, side by side in one run.

Both servers run for the whole benchmark: the lab server in its own process (so its
interpreter is not shared with anything else) and sshd from a configuration written here,
on a free port, as root (it logs the current user in with a fresh key; stopped by PID).
The run is several interleaved rounds: in each round the two servers take turns, upload
then download, and which goes first alternates from round to round, so a change of the
machine's load lands on both. Each ratio (ours over sshd's) is computed within its round;
the summary gives the median and the range over the rounds. One transfer per direction
would be too noisy to decide anything on a shared 2-core machine.

Per transfer, beside MiB/s: each server's CPU time per MiB, which moves much less with the
load than MiB/s do: the lab server's process (user and system), and for sshd its master
process with the children it has reaped (every connection's sshd and the session that runs
internal-sftp; the benchmark waits until they are reaped); and the client's (``sftp`` with
its ``ssh``). ``cpu_ratio`` is sshd's CPU per MiB over ours: above 1, ours costs less. The
cipher, MAC and compression each server negotiated with the client are recorded (``sftp
-v``). The lab server's peak resident memory (``VmHWM``) is read before the first transfer
and after every round: flat means streamed, never the whole file in memory. Every file is
compared with the payload, a MiB at a time.

Defaults: 5 rounds of 256 MiB (20 transfers: about 2 minutes here at loads of 3 to 9);
``WIRELAB_SSH_BENCH_MIB=1024`` runs the issue's 1 GiB (3 rounds unless
``WIRELAB_SSH_BENCH_ROUNDS`` says otherwise). Needs ``sftp``, ``ssh-keygen`` and ``sshd``
(scripts/install-system-deps.sh). Writes ``bench/results/ssh.json`` and
``bench/results/ssh.png``::

    .venv/bin/python bench/ssh_bench.py
"""

from __future__ import annotations

import asyncio
import getpass
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MIB = int(os.environ.get("WIRELAB_SSH_BENCH_MIB", "256"))
SIZE = MIB * 1024 * 1024
ROUNDS = int(os.environ.get("WIRELAB_SSH_BENCH_ROUNDS", "5" if MIB <= 256 else "3"))
WAYS = ("upload", "download")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw_tcp_rate(size: int) -> float:
    """Bytes per second through one loopback TCP connection (the ceiling)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = [0]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(1 << 20):
                received[0] += len(chunk)

    thread = threading.Thread(target=sink)
    thread.start()
    block = b"x" * (1 << 20)
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as client:
        for _ in range(size // len(block)):
            client.sendall(block)
    thread.join()
    server.close()
    return received[0] / (time.perf_counter() - start)


def _lab_server(state_dir: str, ports: Any, stop: Any) -> None:
    """The lab SSH server in this (child) process until ``stop`` is set."""
    from wirelab.lab.service import LabContext
    from wirelab.ssh.keys import write_known_hosts
    from wirelab.ssh.server import open_ssh_server
    from wirelab.ssh.service import lab_ssh_settings

    async def main() -> None:
        lab = LabContext(state_dir=Path(state_dir))
        settings = lab_ssh_settings(lab)
        listener = await open_ssh_server("127.0.0.1", 0, settings)
        write_known_hosts(lab.state_dir, settings.host_key, listener.port)
        home = settings.account("brandon").home  # type: ignore[union-attr]
        ports.put((listener.port, os.getpid(), str(home)))
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await listener.aclose()

    asyncio.run(main())


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds of ``pid`` (with its reaped children when ``children``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_reaped(pid: int, timeout: float = 5.0) -> None:
    """Until ``pid`` has no child process left (sshd reaps each connection's processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not children.read_text().split():
                return
        except OSError:  # no children file on this kernel: give sshd a moment
            time.sleep(0.5)
            return
        time.sleep(0.02)


def _same(a: Path, b: Path) -> bool:
    """Byte for byte, a MiB at a time (never two whole files in memory)."""
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(1 << 20), right.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


@dataclass
class Server:
    """One SFTP server under test and how OpenSSH's client logs in to it."""

    name: str
    port: int
    pid: int
    user: str
    key: Path
    known_hosts: Path
    remote_dir: str  # where uploads go, as the client names it
    local_dir: Path  # the same directory on this machine
    with_children: bool  # count reaped children's CPU (sshd forks per connection)

    def argv(self, *extra: str) -> list[str]:
        return [
            "sftp", *extra, "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-P", str(self.port), "-b", "-", f"{self.user}@127.0.0.1",
        ]  # fmt: skip

    def negotiated(self) -> str:
        """What the client and this server agreed on (cipher, MAC, compression)."""
        done = subprocess.run(
            self.argv("-v"), input=b"pwd\n", capture_output=True, timeout=60, check=True
        )
        for line in done.stderr.decode(errors="replace").splitlines():
            if "kex: server->client cipher:" in line:
                return line.split("kex: server->client ", 1)[1].strip()
        return "?"

    def transfer(self, batch: str) -> dict[str, float]:
        """Run one ``sftp -b`` batch: wall seconds, server and client CPU seconds."""
        cpu_before = _cpu_seconds(self.pid, self.with_children)
        client_before = os.times()
        start = time.perf_counter()
        subprocess.run(
            self.argv(), input=batch.encode(), check=True, capture_output=True, timeout=900
        )
        seconds = time.perf_counter() - start
        client_after = os.times()
        if self.with_children:
            _wait_reaped(self.pid)
        return {
            "seconds": seconds,
            "server_cpu": _cpu_seconds(self.pid, self.with_children) - cpu_before,
            "client_cpu": (client_after.children_user + client_after.children_system)
            - (client_before.children_user + client_before.children_system),
        }


def _start_sshd(workdir: Path) -> tuple[subprocess.Popen[bytes], Server]:
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / name)], check=True
        )
    (workdir / "authorized_keys").write_text((workdir / "client.pub").read_text())
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {workdir / 'host'}\n"
        f"PidFile {workdir / 'sshd.pid'}\nUsePAM no\nPasswordAuthentication no\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    pub = (workdir / "host.pub").read_text().split()
    known = workdir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen(
        [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    files = workdir / "files"
    files.mkdir()
    server = Server(
        "sshd", port, proc.pid, getpass.getuser(), workdir / "client", known,
        str(files), files, with_children=True,
    )  # fmt: skip
    return proc, server


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def _summary(rounds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in names:
        summary[name] = {
            f"{way}_{what}": _spread([r[name][way][what] for r in rounds])
            for way in WAYS
            for what in ("mib_s", "cpu_ms_per_mib", "client_cpu_ms_per_mib")
        }
    if "sshd" in names:
        for way in WAYS:
            summary[f"lab_over_sshd_{way}"] = _spread([r[f"lab_over_sshd_{way}"] for r in rounds])
            summary[f"cpu_ratio_{way}"] = _spread([r[f"cpu_ratio_{way}"] for r in rounds])
    return summary


def main() -> None:
    for tool in ("sftp", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/install-system-deps.sh)")
    results: dict[str, Any] = {
        "size_bytes": SIZE,
        "rounds": ROUNDS,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    results["raw_tcp_mib_s"] = round(raw_tcp_rate(SIZE) / 2**20, 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        payload = work / "payload.bin"
        with payload.open("wb") as out:
            for _ in range(MIB):
                out.write(os.urandom(1 << 20))
        ctx = mp.get_context("spawn")
        ports, stop = ctx.Queue(), ctx.Event()
        state = work / "lab"
        child = ctx.Process(target=_lab_server, args=(str(state), ports, stop))
        child.start()
        port, pid, home = ports.get(timeout=30)
        servers = [
            Server(
                "lab", port, pid, "brandon", state / "ssh" / "keys" / "brandon",
                state / "ssh" / "known_hosts", ".", Path(home), with_children=False,
            )
        ]  # fmt: skip
        proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0 and (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
            (work / "sshd").mkdir()
            proc, sshd = _start_sshd(work / "sshd")
            servers.append(sshd)
        else:
            print("sshd is not run (needs root and sshd): the lab server alone")
        names = [s.name for s in servers]
        try:
            results["negotiated"] = {s.name: s.negotiated() for s in servers}
            rss = [_peak_rss(pid)]
            rounds: list[dict[str, Any]] = []
            for number in range(ROUNDS):
                order = servers if number % 2 == 0 else servers[::-1]
                result: dict[str, Any] = {
                    "first": order[0].name,
                    "load": round(os.getloadavg()[0], 2),
                }
                result.update({s.name: {} for s in servers})
                for way in WAYS:
                    for server in order:
                        down = work / f"down-{server.name}.bin"
                        if way == "upload":
                            batch = f"put {payload} {server.remote_dir}/up.bin\n"
                            check = server.local_dir / "up.bin"
                        else:
                            batch = f"get {server.remote_dir}/up.bin {down}\n"
                            check = down
                        timed = server.transfer(batch)
                        if not _same(check, payload):
                            raise SystemExit(f"{server.name} {way}: the file differs")
                        result[server.name][way] = {
                            "mib_s": round(MIB / timed["seconds"], 1),
                            "cpu_ms_per_mib": round(timed["server_cpu"] / MIB * 1000, 2),
                            "client_cpu_ms_per_mib": round(timed["client_cpu"] / MIB * 1000, 2),
                        }
                        down.unlink(missing_ok=True)
                if "sshd" in names:
                    for way in WAYS:
                        lab, sshd = result["lab"][way], result["sshd"][way]
                        result[f"lab_over_sshd_{way}"] = round(lab["mib_s"] / sshd["mib_s"], 2)
                        result[f"cpu_ratio_{way}"] = round(
                            sshd["cpu_ms_per_mib"] / max(0.01, lab["cpu_ms_per_mib"]), 2
                        )
                rss.append(_peak_rss(pid))
                rounds.append(result)
                print(_round_line(number, result, names), flush=True)
        finally:
            stop.set()
            child.join(30)
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    results["lab_peak_rss_mib"] = {
        "before": round(rss[0] / 2**20, 1),
        "after_each_round": [round(x / 2**20, 1) for x in rss[1:]],
    }
    results["byte_identical"] = True  # every transfer was checked (a difference stops the run)
    results["summary"] = _summary(rounds, names)
    results["per_round"] = rounds
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ssh.json").write_text(json.dumps(results, indent=2) + "\n")
    print(_report(results, names))
    _chart(results, names)


def _round_line(number: int, result: dict[str, Any], names: list[str]) -> str:
    parts = [f"round {number + 1} (load {result['load']}, {result['first']} first):"]
    for name in names:
        for way in WAYS:
            r = result[name][way]
            parts.append(f"{name} {way} {r['mib_s']} MiB/s {r['cpu_ms_per_mib']} ms/MiB;")
    if "sshd" in names:
        parts.append(
            f"lab/sshd up {result['lab_over_sshd_upload']} down {result['lab_over_sshd_download']}"
        )
    return " ".join(parts)


def _report(results: dict[str, Any], names: list[str]) -> str:
    summary = results["summary"]

    def show(spread: dict[str, float]) -> str:
        return f"{spread['median']} ({spread['min']}-{spread['max']})"

    lines = [
        f"{MIB} MiB x {ROUNDS} rounds, raw loopback TCP {results['raw_tcp_mib_s']} MiB/s, "
        f"load {results['load_before'][0]} -> {results['load_after'][0]}; median (range)",
    ]
    for name in names:
        lines.append(f"  {name}: {results['negotiated'][name]}")
        for way in WAYS:
            lines.append(
                f"    {way:8} {show(summary[name][f'{way}_mib_s'])} MiB/s, server "
                f"{show(summary[name][f'{way}_cpu_ms_per_mib'])} ms CPU/MiB, client "
                f"{show(summary[name][f'{way}_client_cpu_ms_per_mib'])} ms CPU/MiB"
            )
    if "sshd" in names:
        for way in WAYS:
            lines.append(
                f"  lab/sshd {way:8} {show(summary[f'lab_over_sshd_{way}'])}, "
                f"CPU sshd/lab {show(summary[f'cpu_ratio_{way}'])}"
            )
    rss = results["lab_peak_rss_mib"]
    lines.append(f"  lab peak RSS {rss['before']} MiB before, {rss['after_each_round']} after")
    return "\n".join(lines)


def _chart(results: dict[str, Any], names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values, low, high = [], [], [], []
    for name in names:
        for way in WAYS:
            spread = results["summary"][name][f"{way}_mib_s"]
            labels.append(f"{name}\n{way}")
            values.append(spread["median"])
            low.append(spread["median"] - spread["min"])
            high.append(spread["max"] - spread["median"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(
        labels,
        values,
        yerr=[low, high],
        capsize=6,
        color=["#4477aa", "#66ccee", "#228833", "#ccbb44"][: len(values)],
    )
    ax.set_ylabel("MiB/s (median, bars: range over rounds)")
    ax.set_title(
        f"SFTP over loopback, OpenSSH sftp client, {MIB} MiB x {ROUNDS} rounds\n"
        f"(ceiling: raw loopback TCP {results['raw_tcp_mib_s']:.0f} MiB/s)"
    )
    fig.tight_layout()
    fig.savefig(RESULTS / "ssh.png", dpi=100)


if __name__ == "__main__":
    main()
