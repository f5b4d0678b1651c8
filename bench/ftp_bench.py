"""Benchmark for chapter 17: FTP and FTPS transfer rates, our server beside vsftpd.

Side by side in one run, over loopback: curl downloads and uploads one file of
:data:`SIZE` bytes from our lab FTP server (pyftpdlib, in a child process, as ``wirelab ftp
serve`` runs it) and from vsftpd (started from a config written here; skipped when vsftpd is
missing or we are not root), in plain FTP and in explicit FTPS (``--ssl-reqd``, ``PROT P``,
verified with a throwaway lab CA). The ceiling is the raw loopback TCP rate: ``sendfile``
of the same file into a reader that throws the bytes away. Our server's peak memory
(``VmHWM``) is read before and after the transfers, to show it stays flat.

The issue asked for 1 GiB; on this shared 2-core machine the default is 256 MiB
(``FTP_BENCH_MIB=1024`` for the full size). Writes ``bench/results/ftp.json`` and
``bench/results/ftp.png``::

    .venv/bin/python bench/ftp_bench.py
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = int(os.environ.get("FTP_BENCH_MIB", "256")) << 20
ROUNDS = 5
MAX_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_greeting(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server on {port} exited: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no FTP greeting on {port}")


def serve_ours(root: str, home: str, cert: str, key: str, port: str) -> None:
    """The child: our server on ``port`` until stdin closes."""
    from wirelab.ftp.server import FTPAccount, FTPSettings, start_ftp_server

    settings = FTPSettings(
        anonymous_root=Path(root),
        accounts=(FTPAccount("bench", "bench", Path(home)),),
        cert_file=Path(cert),
        key_file=Path(key),
    )
    with start_ftp_server("127.0.0.1", int(port), settings):
        sys.stdin.read()


def _vmhwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _vsftpd(work: Path, root: Path, cert: Path, key: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    port = _free_port()
    empty = work / "empty"
    empty.mkdir(mode=0o755)
    conf = work / "vsftpd.conf"
    conf.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                "listen_address=127.0.0.1",
                f"listen_port={port}",
                "background=NO",
                "anonymous_enable=YES",
                "local_enable=NO",
                f"anon_root={root}",
                "no_anon_password=YES",
                "write_enable=YES",
                "anon_upload_enable=YES",
                "seccomp_sandbox=NO",
                f"secure_chroot_dir={empty}",
                "ssl_enable=YES",
                "allow_anon_ssl=YES",
                "force_anon_data_ssl=NO",
                "force_anon_logins_ssl=NO",
                "require_ssl_reuse=NO",
                f"rsa_cert_file={cert}",
                f"rsa_private_key_file={key}",
                "xferlog_enable=NO",
                "",
            ]
        )
    )
    proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_greeting(port, proc)
    return proc, port


def _curl(args: list[str]) -> float:
    """Run curl and return seconds taken (curl's own total time)."""
    done = subprocess.run(
        ["curl", "-sS", "--max-time", str(MAX_SECONDS), "-w", "%{time_total}", *args],
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 10,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"curl {' '.join(args)} failed: {done.stderr.strip()}")
    return float(done.stdout.strip().rsplit("\n", 1)[-1])


def _best_rate(runs: list[float]) -> float:
    return SIZE / min(runs) / 1e6  # MB/s of the best round


def _raw_loopback(path: Path) -> float:
    """sendfile into a reader that discards: the loopback ceiling, MB/s."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        times: list[float] = []
        for _ in range(ROUNDS):
            reader = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import socket,sys\n"
                    f"s=socket.create_connection(('127.0.0.1',{port}))\n"
                    "b=bytearray(1<<20)\n"
                    "while s.recv_into(b):\n    pass\n",
                ]
            )
            conn, _ = listener.accept()
            started = time.perf_counter()
            with conn, path.open("rb") as source:
                conn.sendfile(source)
            reader.wait(timeout=MAX_SECONDS)
            times.append(time.perf_counter() - started)
    return _best_rate(times)


KINDS = ("ftp download", "ftp upload", "ftps download", "ftps upload")


def one_round(base: str, cafile: Path, user: str, upload_dir: str, big: Path, n: int) -> dict:
    """Seconds of each of :data:`KINDS`, once, against the server at ``base``."""
    times: dict[str, float] = {}
    for label, tls in (("ftp", []), ("ftps", ["--ssl-reqd", "--cacert", str(cafile)])):
        times[f"{label} download"] = _curl([*tls, "-o", os.devnull, f"{base}/big.bin"])
        target = f"{base}/{upload_dir}{label}-up{n}.bin"
        times[f"{label} upload"] = _curl([*tls, "--user", user, "-T", str(big), target])
    return times


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_ours(*sys.argv[2:7])
        return
    from wirelab.net.ca import LabCA

    if not shutil.which("curl"):
        raise SystemExit("curl is not installed (apt-get install curl)")
    results: dict[str, object] = {
        "size_bytes": SIZE,
        "rounds": ROUNDS,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "client": subprocess.run(
            ["curl", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0],
    }
    with tempfile.TemporaryDirectory(prefix="ftp-bench-") as tmp:
        work = Path(tmp)
        root = work / "root"
        root.mkdir()
        (root / "incoming").mkdir()
        big = root / "big.bin"
        with big.open("wb") as out:  # incompressible, written in 1 MiB blocks
            block = os.urandom(1 << 20)
            for _ in range(SIZE >> 20):
                out.write(block)
        home = work / "home"
        home.mkdir()
        ca = LabCA.load_or_create(work / "ca")
        cert, key = ca.server_cert_for(["localhost"], work / "ca")

        results["raw loopback MB/s"] = _raw_loopback(big)
        print(f"raw loopback {results['raw loopback MB/s']:8.0f} MB/s", flush=True)

        port = _free_port()
        ours = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(root),
                str(home),
                str(cert),
                str(key),
                str(port),
            ],
            stdin=subprocess.PIPE,
        )
        servers = {"wirelab": (f"ftp://localhost:{port}", "bench:bench", "")}
        vsftpd = None
        try:
            _wait_greeting(port, ours)
            if os.geteuid() == 0 and (shutil.which("vsftpd") or Path("/usr/sbin/vsftpd").exists()):
                shutil.chown(root / "incoming", "ftp", "ftp")
                vsftpd, vport = _vsftpd(work, root, cert, key)
                servers["vsftpd"] = (f"ftp://localhost:{vport}", "anonymous:", "incoming/")
            else:
                print("vsftpd: not measured (not installed, or not root)")
            before = _vmhwm_kib(ours.pid)
            runs: dict[str, dict[str, list[float]]] = {n: {k: [] for k in KINDS} for n in servers}
            for n in range(ROUNDS):  # interleaved, so a busy moment hits both servers alike
                for name, (base, user, updir) in servers.items():
                    for kind, seconds in one_round(base, ca.cert_path, user, updir, big, n).items():
                        runs[name][kind].append(seconds)
                    for uploaded in [*home.glob("*-up*.bin"), *(root / "incoming").glob("*")]:
                        uploaded.unlink()  # keep the disk use at one file's size
            results["wirelab peak memory KiB (before, after)"] = [before, _vmhwm_kib(ours.pid)]
            for name in ("wirelab", "vsftpd"):
                if name not in runs:
                    results[name] = None
                    continue
                results[name] = {kind: _best_rate(runs[name][kind]) for kind in KINDS}
                for kind in KINDS:
                    print(f"{name:8} {kind:14} {results[name][kind]:8.0f} MB/s", flush=True)
        finally:
            assert ours.stdin is not None
            ours.stdin.close()
            ours.wait(timeout=30)
            if vsftpd is not None:
                vsftpd.terminate()
                vsftpd.communicate(timeout=10)

    vs = results.get("vsftpd")
    if isinstance(vs, dict):
        ours_rows = results["wirelab"]
        assert isinstance(ours_rows, dict)
        results["ratio to vsftpd"] = {k: ours_rows[k] / vs[k] for k in ours_rows}
        for k, v in results["ratio to vsftpd"].items():  # type: ignore[union-attr]
            print(f"ratio {k:14} {v:5.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ftp.json").write_text(json.dumps(results, indent=2) + "\n")
    _chart(results)


def _chart(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = ["ftp download", "ftp upload", "ftps download", "ftps upload"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.38
    for offset, name in ((-width / 2, "wirelab"), (width / 2, "vsftpd")):
        data = results.get(name)
        if isinstance(data, dict):
            ax.bar(
                [i + offset for i in range(len(rows))], [data[r] for r in rows], width, label=name
            )
    ax.axhline(results["raw loopback MB/s"], color="grey", linestyle="--", label="raw loopback TCP")
    ax.set_xticks(range(len(rows)), rows)
    ax.set_ylabel("MB/s (best of rounds)")
    ax.set_title(f"FTP and FTPS over loopback, {results['size_bytes'] >> 20} MiB, curl")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "ftp.png", dpi=100)


if __name__ == "__main__":
    main()
