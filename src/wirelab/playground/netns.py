"""Build and tear down the playground with ``ip``, ``nft`` (or ``iptables``) and ``tc``.

Every command runs through :func:`subprocess.run` with an argument list, never a shell.
Each host and each LAN is a network namespace named ``PREFIX-NAME`` (``wl4242-h1``); veth
pairs are created directly inside the namespaces they join, so no interface of the
playground ever appears in the machine's own namespace and no route, NAT or bridge joins the
playground to the machine's real interfaces. Deleting the namespaces removes every link.

A reaper process (:mod:`wirelab.playground.reaper`) watches the controlling process and
removes everything with the prefix when it dies, however it dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wirelab.errors import ConfigError, ServiceUnavailable, WirelabError
from wirelab.playground.faults import QDISC_UNKNOWN, TBF_LIMITS, loss_rules, nat_rules, parse_loss
from wirelab.playground.plumbing import (
    COMMAND_TIMEOUT,
    ETC_NETNS,
    NETNS_DIR,
    PREFIX_PATTERN,
    check_prefix,
    namespace,
    run,
)
from wirelab.playground.rootless import (
    ROOTLESS_ENV,
    check_capability,
    enter_argv,
    private_mounts,
    rootless_blocker,
    unshare_argv,
)
from wirelab.playground.topology import BRIDGES, DNS_RECORDS, HOSTS, LINKS, path_between

__all__ = [
    "COMMAND_TIMEOUT",
    "NETNS_DIR",
    "QDISC_UNKNOWN",
    "ROOTLESS_ENV",
    "Playground",
    "check_capability",
    "check_prefix",
    "cleanup_prefix",
    "enter_argv",
    "list_prefixes",
    "namespace",
    "parse_loss",
    "private_mounts",
    "rootless_blocker",
    "run",
    "scratch_root",
    "unshare_argv",
]


def list_prefixes() -> list[str]:
    """Every playground prefix that has a namespace on this machine."""
    try:
        names = [p.name for p in NETNS_DIR.iterdir()]
    except FileNotFoundError:
        return []
    found = {n.split("-", 1)[0] for n in names if "-" in n}
    return sorted(p for p in found if PREFIX_PATTERN.match(p))


def _namespaces_of(prefix: str) -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(f"{prefix}-"))
    except FileNotFoundError:
        return []


def _pids_in(names: Sequence[str]) -> list[int]:
    """Every process whose network namespace is one of ``names`` (by the namespace inode)."""
    inodes = set()
    for ns in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_DIR / ns).st_ino)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    found.append(int(entry.name))
    return found


def cleanup_prefix(prefix: str) -> list[str]:
    """Kill every process in, and delete, every namespace of ``prefix``; return their names.

    Safe to call twice and on a half-built playground (a crash, Ctrl-C during ``up``).
    """
    check_prefix(prefix)
    names = _namespaces_of(prefix)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_in(names) if names else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3.0
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.05)
        if not pids:
            break
    if names:
        try:
            run(["ip", "-b", "-"], stdin="".join(f"netns del {ns}\n" for ns in names))
        except WirelabError:
            for ns in names:  # one by one, so one stuck name does not keep the others
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    for directory in ETC_NETNS.glob(f"{prefix}-*"):
        shutil.rmtree(directory, ignore_errors=True)
    for directory in scratch_root().glob(f"wirelab-{prefix}-*"):
        shutil.rmtree(directory, ignore_errors=True)
    return names


def scratch_root() -> Path:
    """Where daemons that drop privileges keep what their unprivileged side must reach
    (``TMP/wirelab-PREFIX-NAME``): a state directory is private to its owner, and a
    traversable ancestor chain is needed. Removed with the playground."""
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Playground:
    """One playground instance: its prefix, per-host directory and the processes it started."""

    prefix: str
    directory: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    nat: str = ""
    #: The prefix that enters a rootless playground's namespaces from outside (nsenter).
    enter: tuple[str, ...] = ()
    #: Built inside an unprivileged user namespace (only gid 0 is mapped there).
    rootless: bool = False

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def cmd(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run from here: through :attr:`enter` for a rootless playground."""
        return [*self.enter, *argv]

    # -- names ---------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        """The namespace of host or LAN ``name``."""
        return namespace(self.prefix, name)

    def host_dir(self, name: str) -> Path:
        """The per-host directory (CA file, resolv.conf, logs)."""
        return self.directory / name

    # -- building ------------------------------------------------------------------------
    def up(self, ca_files: Mapping[str, bytes] | None = None) -> None:
        """Build every namespace, link, address, route and NAT rule; undo it all on failure."""
        check_capability()
        try:
            self._build(ca_files or {})
        except BaseException:
            self.down()
            raise

    def _build(self, ca_files: Mapping[str, bytes]) -> None:
        names = [h.name for h in HOSTS] + list(BRIDGES)
        if _namespaces_of(self.prefix):
            raise ConfigError(f"a playground with prefix {self.prefix} already exists")
        try:
            run(
                self.cmd(["ip", "-b", "-"]),
                stdin="".join(f"netns add {self.ns(n)}\n" for n in names),
            )
        except WirelabError as exc:
            raise ServiceUnavailable(
                "cannot create network namespaces here (the playground needs root with "
                f"CAP_SYS_ADMIN and CAP_NET_ADMIN, e.g. not in an unprivileged container): {exc}"
            ) from exc
        links = "".join(
            f"link add name {link.a.device} netns {self.ns(link.a.node)} type veth "
            f"peer name {link.b.device} netns {self.ns(link.b.node)}\n"
            for link in LINKS
        )
        run(self.cmd(["ip", "-b", "-"]), stdin=links)
        for lan in BRIDGES:
            ports = [ln.b.device for ln in LINKS if ln.b.node == lan]
            batch = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
            batch += [f"link set dev {p} master br0" for p in ports]
            batch += [f"link set dev {p} up" for p in ports]
            run(self.cmd(["ip", "-n", self.ns(lan), "-b", "-"]), stdin="\n".join(batch) + "\n")
        for h in HOSTS:
            batch = ["link set lo up"]
            for device, addresses in h.addresses.items():
                batch += [f"address add {a} dev {device}" for a in addresses]
                batch.append(f"link set dev {device} up")
            batch += ["route add " + " ".join(r.argv()) for r in h.routes]
            run(self.cmd(["ip", "-n", self.ns(h.name), "-b", "-"]), stdin="\n".join(batch) + "\n")
            forward = "1" if h.forwarding else "0"
            groups = "0 0" if self.rootless else "0 2147483647"  # only gid 0 maps rootless
            run(
                self.cmd([
                    "ip", "netns", "exec", self.ns(h.name), "sysctl", "-q", "-w",
                    f"net.ipv4.ip_forward={forward}",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    f"net.ipv4.ping_group_range={groups}",
                ])
            )  # fmt: skip
            if h.masquerade:
                self._masquerade(h.name, h.masquerade)
            self._write_host_files(h.name, ca_files)

    def _masquerade(self, name: str, device: str) -> None:
        if shutil.which("nft"):
            run(
                self.cmd(["ip", "netns", "exec", self.ns(name), "nft", "-f", "-"]),
                stdin=nat_rules(device),
            )
            self.nat = "nftables"
        elif shutil.which("iptables"):
            run(
                self.cmd([
                    "ip", "netns", "exec", self.ns(name), "iptables", "-t", "nat",
                    "-A", "POSTROUTING", "-o", device, "-j", "MASQUERADE",
                ])
            )  # fmt: skip
            self.nat = "iptables"
        else:
            raise ServiceUnavailable(
                "the playground's modems need nftables or iptables for NAT "
                "(apt-get install nftables)"
            )

    def _write_host_files(self, name: str, ca_files: Mapping[str, bytes]) -> None:
        here = self.host_dir(name)
        here.mkdir(parents=True, exist_ok=True)
        for filename, data in ca_files.items():
            (here / filename).write_bytes(data)
        resolv = "nameserver 10.1.1.1\nsearch example.com\n"
        # The hosts share the machine's host name (no UTS namespace): name it here, as Debian
        # does, so a getfqdn() (asyncssh's, at every SSH listen) is answered from this file
        # instead of waiting on a DNS that may not be up yet.
        machine = socket.gethostname()
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{addr} {fqdn}\n" for fqdn, addr in sorted(DNS_RECORDS.items())
        )
        if machine and machine not in DNS_RECORDS:
            hosts += f"127.0.1.1 {machine}\n"
        etc = ETC_NETNS / self.ns(name)
        etc.mkdir(parents=True, exist_ok=True)
        for target in (here, etc):
            (target / "resolv.conf").write_text(resolv, encoding="ascii")
            (target / "hosts").write_text(hosts, encoding="ascii")
            (target / "hostname").write_text(f"{name}\n", encoding="ascii")

    # -- running things inside -----------------------------------------------------------
    def env(self, name: str) -> dict[str, str]:
        """The environment of a command run in host ``name`` (the lab CA, no proxies)."""
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        ca = self.host_dir(name) / "ca.crt"
        if ca.exists():
            env["SSL_CERT_FILE"] = str(ca)
            env["WIRELAB_CA"] = str(ca)
        env["WIRELAB_PLAYGROUND_HOST"] = name
        return env

    def argv(self, name: str, command: Sequence[str]) -> list[str]:
        """``ip netns exec NS COMMAND...`` for host ``name``."""
        self._check_host(name)
        return self.cmd(["ip", "netns", "exec", self.ns(name), *command])

    def exec(
        self, name: str, command: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in host ``name`` and wait for it (output captured)."""
        try:
            return subprocess.run(
                self.argv(name, command),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.env(name),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise WirelabError(f"{command[0]} in {name} took more than {timeout:g} s") from exc

    def spawn(self, name: str, command: Sequence[str], *, label: str) -> subprocess.Popen[bytes]:
        """Start ``command`` in host ``name`` in the background; its log is in the host dir."""
        log = (self.host_dir(name) / f"{label}.log").open("ab")
        try:
            proc = subprocess.Popen(
                self.argv(name, command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(name),
                start_new_session=True,
            )
        finally:
            log.close()
        self.processes[f"{name}/{label}"] = proc
        return proc

    def python(self, name: str, module: str, *args: str) -> list[str]:
        """The argument list that runs ``python -m module args`` with this interpreter."""
        del name
        return [sys.executable, "-m", module, *args]

    def _check_host(self, name: str) -> None:
        if name not in {h.name for h in HOSTS}:
            known = ", ".join(h.name for h in HOSTS)
            raise ConfigError(f"no host {name[:40]!r} in the playground (hosts: {known})")

    # -- link faults ---------------------------------------------------------------------
    def shape(
        self,
        a: str,
        b: str,
        *,
        delay: str | None = None,
        loss: str | None = None,
        rate: str | None = None,
        clear: bool = False,
    ) -> list[str]:
        """Delay, drop or slow traffic between neighbours ``a`` and ``b``; or clear it all.

        ``--delay`` needs tc's netem (which then also does loss and rate). Without a delay,
        the rate is a tc token bucket (tbf) and the loss an nftables rule that drops that
        share of packets at random on the interface's egress, so both work on kernels built
        without netem. Returns ``NAMESPACE:DEVICE`` for every interface changed.
        """
        ports = path_between(a, b)
        if not ports:
            raise ConfigError(f"{a[:40]} and {b[:40]} are not neighbours in the playground")
        if not clear and not (delay or loss or rate):
            raise ConfigError("say --delay, --loss or --rate (or --clear)")
        permille = None if loss is None else parse_loss(loss)
        changed = []
        for port in ports:
            ns, device = self.ns(port.node), port.device
            self._clear_faults(ns, device)
            if not clear:
                if delay:
                    netem = ["netem", "delay", delay]
                    if permille is not None:
                        netem += ["loss", f"{permille / 10:g}%"]
                    if rate:
                        netem += ["rate", rate]
                    self._qdisc(ns, device, netem)
                else:
                    if rate:
                        self._qdisc(ns, device, ["tbf", "rate", rate, *TBF_LIMITS])
                    if permille:
                        run(self.cmd(["ip", "netns", "exec", ns, "nft", "-f", "-"]),
                            stdin=loss_rules(device, permille))  # fmt: skip
            changed.append(f"{ns}:{device}")
        return changed

    def _qdisc(self, ns: str, device: str, spec: list[str]) -> None:
        try:
            run(
                self.cmd(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "tc",
                        "qdisc",
                        "replace",
                        "dev",
                        device,
                        "root",
                        *spec,
                    ]
                )
            )
        except WirelabError as exc:
            if QDISC_UNKNOWN in str(exc):
                kind = spec[0]
                raise ServiceUnavailable(
                    f"--{'delay' if kind == 'netem' else 'rate'} needs the kernel module "
                    f"sch_{kind}, which this kernel lacks (tc: {QDISC_UNKNOWN})"
                    + ("; --loss and --rate work without it" if kind == "netem" else "")
                ) from exc
            raise

    def netem_missing(self) -> str | None:
        """Why ``--delay`` cannot work here (no ``sch_netem``), or ``None`` when it can.

        Tries a netem qdisc on the loopback of the ``isp`` host, and removes it.
        """
        ns = self.ns("isp")
        argv = self.cmd(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root"])
        done = subprocess.run(
            [*argv, "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode == 0:
            self._clear_faults(ns, "lo")
            return None
        return f"this kernel has no sch_netem (tc: {' '.join(done.stderr.split())[:200]})"

    def _clear_faults(self, ns: str, device: str) -> None:
        for argv in (
            ["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", device, "root"],
            ["ip", "netns", "exec", ns, "nft", "delete", "table", "netdev", f"wlfault_{device}"],
        ):
            with contextlib.suppress(OSError):  # no nft: there is no rule to remove
                subprocess.run(
                    self.cmd(argv), capture_output=True, timeout=COMMAND_TIMEOUT, check=False
                )

    # -- tearing down --------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every process and remove every namespace (and so every link) of this instance."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        self.processes.clear()
        removed = cleanup_prefix(self.prefix)
        shutil.rmtree(self.directory, ignore_errors=True)
        return removed
