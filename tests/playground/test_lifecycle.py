"""Up fast, down clean: by ``down``, by Ctrl-C, and when the controlling process is killed.

"Nothing left" means: no namespace with the playground's prefix, no ``/etc/netns`` entry, no
process inside any of its namespaces, no interface added to the machine's own namespace, and
no instance directory.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_wirelab
from tests.playground.conftest import namespaces_of, processes_in, require_netns
from wirelab.playground.control import start_reaper
from wirelab.playground.netns import Playground, cleanup_prefix, run
from wirelab.playground.topology import BRIDGES, HOSTS

pytestmark = pytest.mark.netns


def machine_links() -> list[str]:
    return sorted(ln["ifname"] for ln in json.loads(run(["ip", "-j", "link", "show"])))


def assert_nothing_left(prefix: str, directory: Path | None = None) -> None:
    assert namespaces_of(prefix) == []
    assert list(Path("/etc/netns").glob(f"{prefix}-*")) == []
    assert processes_in(prefix) == []
    if directory is not None:
        assert not directory.exists()


def left_over(prefix: str, directory: Path | None = None) -> bool:
    return bool(
        namespaces_of(prefix)
        or list(Path("/etc/netns").glob(f"{prefix}-*"))
        or processes_in(prefix)
        or (directory is not None and directory.exists())
    )


def wait_until_gone(prefix: str, directory: Path | None = None, timeout: float = 30) -> float:
    """Seconds until nothing of ``prefix`` is left (at most ``timeout``)."""
    started = time.monotonic()
    while left_over(prefix, directory) and time.monotonic() - started < timeout:
        time.sleep(0.1)
    return time.monotonic() - started


def test_up_takes_under_10_s_and_down_leaves_nothing(tmp_path: Path) -> None:
    require_netns()
    before = machine_links()
    prefix = f"wlu{os.getpid()}"
    pg = Playground(prefix, tmp_path / prefix)
    try:
        started = time.monotonic()
        pg.up()
        up_seconds = time.monotonic() - started
        assert len(namespaces_of(prefix)) == len(HOSTS) + len(BRIDGES) == 15
        assert machine_links() == before
        pg.spawn("h2", [sys.executable, "-c", "import time; time.sleep(60)"], label="sleeper")
        deadline = time.monotonic() + 10  # until `ip netns exec` has entered h2
        while not processes_in(prefix) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(processes_in(prefix)) == 1
        started = time.monotonic()
        pg.down()
        down_seconds = time.monotonic() - started
    finally:
        pg.down()  # waits for what it spawned, even when an assertion failed
        cleanup_prefix(prefix)
    print(f"playground up {up_seconds:.2f} s, down {down_seconds:.2f} s")
    assert up_seconds < 10
    assert_nothing_left(prefix, tmp_path / prefix)
    assert machine_links() == before


def test_a_failed_build_removes_what_it_made(tmp_path: Path) -> None:
    """A name clash half-way (the namespaces exist already) leaves the first one untouched
    and removes nothing of it, and a second playground cannot take the same prefix."""
    require_netns()
    prefix = f"wlf{os.getpid()}"
    first = Playground(prefix, tmp_path / "first")
    try:
        first.up()
        second = Playground(prefix, tmp_path / "second")
        with pytest.raises(Exception, match="already exists"):
            second._build({})
        assert len(namespaces_of(prefix)) == 15
    finally:
        first.down()
    assert_nothing_left(prefix)


def _start_controller(state_dir: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirelab", "playground", "up", "--state-dir", str(state_dir), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    path = state_dir / "playground.json"
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the playground did not come up: {err.decode()[-400:]}")
        time.sleep(0.1)
    return proc, json.loads(path.read_text())["prefix"]


def _stderr_until(proc: subprocess.Popen[bytes], pattern: bytes, seconds: float) -> bytes:
    """Read ``proc``'s stderr until ``pattern`` shows or ``seconds`` pass; return what was read.

    The controller writes its state file a moment before it prints "up in": the state file
    says it is up, this line says how long it took.
    """
    assert proc.stderr is not None
    fd, seen = proc.stderr.fileno(), b""
    deadline = time.monotonic() + seconds
    while not re.search(pattern, seen) and (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
    return seen


def test_killed_controller_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL the controller of a playground with its servers: the reaper removes it all."""
    require_netns()
    started = time.monotonic()
    proc, prefix = _start_controller(tmp_path)
    up_seconds = time.monotonic() - started
    load = os.getloadavg()[0]
    print(f"wirelab playground up (network and every server): {up_seconds:.2f} s, load {load:.1f}")
    try:
        # DNS, UDP, zen, the lab's services (one process, its threads in every host) and
        # gunicorn (forked by the lab's thread in www)
        assert len(processes_in(prefix)) >= 5
        early = _stderr_until(proc, rb"up in [0-9.]+ s", 30)
        proc.kill()
        _, rest = proc.communicate(timeout=10)
        err = early + rest
        # The bound. The controller's own time (network and every server) always; the
        # whole command's too (the CLI's start-up imports every topic), unless the machine is
        # overloaded by others (more than two runnable tasks per CPU), when it is only shown.
        said = re.search(r"up in ([0-9.]+) s", err.decode())
        assert said is not None, err.decode()[-400:]
        print(f"the controller's own time: {said.group(1)} s")
        assert float(said.group(1)) < 10
        if load <= 2 * (os.cpu_count() or 1):
            assert up_seconds < 10
        seconds = wait_until_gone(prefix, tmp_path / "playground" / prefix)
        print(f"reaper cleaned up {seconds:.2f} s after SIGKILL")
        assert_nothing_left(prefix, tmp_path / "playground" / prefix)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cleanup_prefix(prefix)


def test_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    require_netns()
    proc, prefix = _start_controller(tmp_path, "--bare")
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert "playground removed" in err.decode()
        assert_nothing_left(prefix, tmp_path / "playground" / prefix)
        assert not (tmp_path / "playground.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cleanup_prefix(prefix)


def test_reaper_cleans_a_prefix_after_its_process_dies(tmp_path: Path) -> None:
    require_netns()
    prefix = f"wlr{os.getpid()}"
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper = start_reaper(prefix, owner.pid, tmp_path / prefix)
    try:
        Playground(prefix, tmp_path / prefix).up()
        owner.kill()
        owner.wait()
        assert reaper.wait(timeout=30) == 0
        assert_nothing_left(prefix, tmp_path / prefix)
    finally:
        owner.kill()
        owner.wait()
        reaper.kill()
        reaper.wait()
        cleanup_prefix(prefix)


def test_cli_detached_status_exec_link_down(tmp_path: Path) -> None:
    require_netns()
    home = ["--state-dir", str(tmp_path)]
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", WIRELAB_HOME=str(tmp_path / "lab"))
    started = time.monotonic()
    done = run_wirelab("playground", "up", "--detach", "--bare", *home, env=env)
    assert done.returncode == 0, done.stderr
    print(f"wirelab playground up --detach --bare: {time.monotonic() - started:.2f} s")
    prefix = json.loads((tmp_path / "playground.json").read_text())["prefix"]
    try:
        status = run_wirelab("playground", "status", "--json", *home, env=env)
        assert status.returncode == 0, status.stderr
        document = json.loads(status.stdout)
        assert document["prefix"] == prefix
        assert document["nodes"]["www"]["interfaces"]["eth0"]["addresses"] == ["10.130.1.4/24"]

        shown = run_wirelab(
            "playground", "exec", *home, "h4", "--", "ip", "-4", "-o", "addr", env=env
        )
        assert shown.returncode == 0, shown.stderr
        assert "192.168.1.14/24" in shown.stdout
        failed = run_wirelab("playground", "exec", *home, "h1", "--", "false", env=env)
        assert failed.returncode == 1

        link = run_wirelab(
            "playground", "link", *home, "isp", "backbone", "--loss", "5%", "--json", env=env
        )
        assert link.returncode == 0, link.stderr
        assert json.loads(link.stdout)["interfaces"] == [
            f"{prefix}-isp:eth0",
            f"{prefix}-backbone:eth0",
        ]
        rules = run_wirelab(
            "playground", "exec", *home, "isp", "--", "nft", "list", "ruleset", env=env
        )
        assert "numgen random mod 1000 < 50 drop" in rules.stdout
        cleared = run_wirelab("playground", "link", *home, "isp", "backbone", "--clear", env=env)
        assert cleared.returncode == 0

        for args, message in (
            (("exec", *home, "h9", "--", "true"), "no host 'h9'"),
            (("link", *home, "h1", "www", "--loss", "1%"), "not neighbours"),
            (("link", *home, "h1", "modemA", "--loss", "200%"), "not between 0% and 100%"),
            (("link", *home, "h1", "modemA"), "say --delay, --loss or --rate"),
            (("up", *home, "--bare", "--real"), "cannot be --real"),
        ):
            bad = run_wirelab("playground", *args, env=env)
            assert bad.returncode == 2, bad.stderr  # usage errors
            assert message in bad.stderr, bad.stderr
    finally:
        down = run_wirelab("playground", "down", *home, env=env)
        cleanup_prefix(prefix)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(prefix, tmp_path / "playground" / prefix)
    gone = run_wirelab("playground", "status", *home, env=env)
    assert gone.returncode == 1 and "no playground is running" in gone.stderr


#: What --real runs where installed: (daemon, the lab servers it replaces).
REAL = {
    "vsftpd": ("ftp/ftp",),
    "nginx": ("www/www",),
    "dnsmasq": ("backbone/dns",),
    "dovecot": ("mail/pop3", "mail/imap"),
    "sshd": ("h1/ssh", "www/ssh", "modemA/ssh"),
}


def test_real_daemons_replace_the_lab_servers(tmp_path: Path) -> None:
    """--real: dnsmasq on backbone, vsftpd on ftp, Dovecot on mail, nginx on www and sshd on
    every host, each answering h1 through the NAT: stdlib and dnspython clients, and our own
    SSH client against OpenSSH with the host key pinned. The lab's SMTP, Telnet and zen
    servers stay. Dovecot's scratch directory goes with the playground."""
    require_netns()
    import shutil

    from tests.playground.conftest import services_required
    from wirelab.net.ca import LabCA
    from wirelab.playground.control import start_services
    from wirelab.playground.netns import scratch_root

    missing = [d for d in REAL if not (shutil.which(d) or Path(f"/usr/sbin/{d}").exists())]
    if missing:
        if services_required():
            pytest.fail(f"--real needs {', '.join(missing)} (WIRELAB_REQUIRE_SERVICES=1)")
        pytest.skip(f"{', '.join(missing)} not installed")
    prefix = f"wlx{os.getpid()}"
    pg = Playground(prefix, tmp_path / prefix)
    try:
        pg.up({"ca.crt": LabCA.load_or_create(tmp_path / "ca").cert_pem})
        started = start_services(pg, tmp_path, real=True)
        for daemon, replaced in REAL.items():
            host = "h1" if daemon == "sshd" else replaced[0].split("/")[0]
            assert f"{host}/{daemon}" in started, daemon
            assert not set(replaced) & set(started), daemon  # the lab's own are not started
        assert {"mail/smtp", "ftp/telnet", "ftp/zen"} <= set(started)
        assert (scratch_root() / f"wirelab-{prefix}-dovecot").is_dir()
        done = pg.exec(
            "h1",
            [
                sys.executable,
                "-c",
                "import ftplib, imaplib, poplib, ssl, urllib.request\n"
                "import dns.resolver\n"
                "f = ftplib.FTP('ftp.example.com', timeout=10)\n"
                "print(f.getwelcome()); f.login(); print(f.nlst()); f.quit()\n"
                "page = urllib.request.urlopen('http://www.example.com/', timeout=10)\n"
                "print(page.read()[:36])\n"
                "r = dns.resolver.Resolver(configure=False); r.nameservers = ['10.1.1.1']\n"
                "print([a.to_text() for a in r.resolve('www.example.com', 'A')])\n"
                "print([a.to_text() for a in r.resolve('example.com', 'MX')])\n"
                "print(r.resolve('smtp.example.com', 'CNAME')[0].to_text())\n"
                "context = ssl.create_default_context()\n"
                "p = poplib.POP3_SSL('mail.example.com', 995, context=context, timeout=10)\n"
                "print(p.getwelcome()); p.user('brandon'); p.pass_('abc123')\n"
                "print(p.stat()[0]); p.quit()\n"
                "m = imaplib.IMAP4_SSL('mail.example.com', 993, ssl_context=context)\n"
                "m.login('brandon', 'abc123'); print(m.select('INBOX', readonly=True))\n"
                "m.logout()\n",
            ],
            timeout=60,
        )
        assert done.stdout.splitlines() == [
            "220 vsftpd on ftp.example.com (wirelab playground)",
            "['README']",
            "b'<html><body><h1>www.example.com</h1>'",
            "['10.130.1.4']",
            "['10 mail.example.com.']",
            "mail.example.com.",
            "b'+OK Dovecot (Debian) ready.'",
            "4",
            "('OK', [b'4'])",
        ], done.stderr[-800:]
        access = (pg.directory / "www" / "nginx" / "nginx-access.log").read_text()
        assert access.startswith("10.25.1.65 ")
        queries = (pg.directory / "backbone" / "dnsmasq" / "queries.log").read_text()
        assert "query[A] www.example.com from 10.25.1.65" in queries
        key = tmp_path / "ssh" / "keys" / "brandon"
        known = pg.host_dir("h1") / "known_hosts"
        for target in ("www.example.com", "h2", "modemA"):
            ssh = pg.exec(
                "h1",
                [
                    sys.executable, "-m", "wirelab", "ssh", "run", target, "-p", "22",
                    "-u", "root", "--key", str(key), "--known-hosts", str(known),
                    "-m", "cat /proc/sys/net/ipv4/ip_forward", "--json",
                ],
                timeout=60,
            )  # fmt: skip
            assert ssh.returncode == 0, (target, ssh.stderr[-500:])
            forwarding = "1\n" if target == "modemA" else "0\n"  # each sshd is in its host
            assert json.loads(ssh.stdout)[0]["stdout"] == forwarding, target
    finally:
        pg.down()
        cleanup_prefix(prefix)
    assert_nothing_left(prefix, tmp_path / prefix)
    assert not (scratch_root() / f"wirelab-{prefix}-dovecot").exists()


def test_down_stale_removes_a_crashed_playground_by_its_prefix(tmp_path: Path) -> None:
    """A playground whose controller died without a reaper (prefix wlz<dead pid>) is found
    and removed by `down --stale`; a live one (this test's own) is left alone."""
    require_netns()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = f"wlz{dead.pid}"
    alive = f"wly{os.getpid()}"
    try:
        Playground(crashed, tmp_path / crashed).up()
        Playground(alive, tmp_path / alive).up()
        env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
        done = run_wirelab("playground", "down", "--stale", "--state-dir", str(tmp_path), env=env)
        assert done.returncode == 0, done.stderr
        assert crashed in done.stdout
        assert alive not in done.stdout
        assert_nothing_left(crashed)
        assert len(namespaces_of(alive)) == 15
    finally:
        cleanup_prefix(crashed)
        cleanup_prefix(alive)
    assert_nothing_left(alive)
