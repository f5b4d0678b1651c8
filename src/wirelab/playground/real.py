"""``--real``: real daemons in the playground instead of the lab's own servers, where installed.

The book's playground ran dnsmasq on backbone, vsftpd on ftp, Dovecot on mail, a web server on
www and OpenSSH on every host. With ``--real`` the playground runs, each in the foreground
with a configuration written into the host's directory, bound inside its host, logging there:

* dnsmasq on backbone:53 (UDP and TCP): the playground's records (every host, MX 10 mail,
  www's MX and the ``smtp`` CNAME) in its one configuration file, no upstream, no
  ``/etc/hosts``;
* vsftpd (anonymous, read-only, in a directory of the host's own) on ftp:21;
* Dovecot on mail: POP3 110 and POP3S 995, IMAP 143 and IMAPS 993, with a lab-CA
  certificate for mail.example.com, brandon/abc123, over a Maildir seeded with the lab's
  messages (Dovecot will not serve mail as root, so its mail belongs to ``nobody``, in
  ``TMP/wirelab-PREFIX-dovecot``, removed with the playground);
* nginx (a static page) on www:80;
* OpenSSH's sshd on port 22 of every host: root with the lab account's key only (no
  password), the playground's own host key, pinned in each host's ``known_hosts``.

A daemon that is not installed is skipped (the lab's server stays), and ``status`` lists what
runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from wirelab.errors import WirelabError
from wirelab.playground.control import HostServer
from wirelab.playground.netns import scratch_root
from wirelab.playground.topology import HOSTS

__all__ = [
    "RealDaemon",
    "dnsmasq_config",
    "dovecot_config",
    "nginx_config",
    "real_servers",
    "sshd_config",
    "vsftpd_config",
]

#: The unprivileged user Dovecot's mail processes run as (uid and gid).
NOBODY = 65534

#: The page nginx serves on www.example.com.
INDEX = "<html><body><h1>www.example.com</h1><p>nginx in the wirelab playground</p></body></html>\n"


def nginx_config(directory: Path, address: str) -> str:
    """A foreground nginx serving ``directory/html`` on ``address:80``, all files in there."""
    temp = " ".join(
        f"{kind}_temp_path {directory / ('tmp-' + kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "user root;\n"
        "worker_processes 1;\n"
        "daemon off;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'nginx-error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"  access_log {directory / 'nginx-access.log'};\n"
        f"  {temp}\n"
        "  client_max_body_size 1m;\n"
        "  client_header_timeout 10s;\n"
        "  client_body_timeout 10s;\n"
        "  server {\n"
        f"    listen {address}:80;\n"
        "    server_name www.example.com;\n"
        f"    root {directory / 'html'};\n"
        "  }\n"
        "}\n"
    )


def vsftpd_config(directory: Path, address: str) -> str:
    """A foreground vsftpd: anonymous, read-only, rooted in ``directory/pub``, on ``address:21``."""
    return (
        "listen=YES\n"
        f"listen_address={address}\n"
        "background=NO\n"
        "anonymous_enable=YES\n"
        "local_enable=NO\n"
        "write_enable=NO\n"
        f"anon_root={directory / 'pub'}\n"
        "no_anon_password=YES\n"
        "ftp_username=nobody\n"
        "nopriv_user=nobody\n"
        f"secure_chroot_dir={directory / 'empty'}\n"
        "seccomp_sandbox=NO\n"
        "pasv_enable=YES\n"
        "pasv_min_port=40000\n"
        "pasv_max_port=40100\n"
        "idle_session_timeout=60\n"
        "data_connection_timeout=60\n"
        "max_clients=50\n"
        "ftpd_banner=vsftpd on ftp.example.com (wirelab playground)\n"
        "xferlog_enable=YES\n"
        f"vsftpd_log_file={directory / 'vsftpd-transfers.log'}\n"
    )


def dnsmasq_config(log: Path) -> str:
    """dnsmasq on the backbone: the playground's zone, nothing from outside, every query logged."""
    lines = [
        "listen-address=10.1.1.1",
        "bind-interfaces",
        "port=53",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "keep-in-foreground",
        "pid-file=",
        "user=root",
        "log-queries",
        f"log-facility={log}",
        "local=/example.com/",
        "domain-needed",
        "cache-size=0",
    ]
    for h in HOSTS:
        names = {h.name, h.fqdn} | ({f"{h.fqdn}.example.com"} if "." not in h.fqdn else set())
        lines.append(f"host-record={','.join(sorted(names))},{h.address}")
    lines += [
        "mx-host=example.com,mail.example.com,10",
        "mx-host=www.example.com,smtp.example.com,10",
        "cname=smtp.example.com,mail.example.com",
    ]
    return "\n".join(lines) + "\n"


def dovecot_config(base: Path, cert: Path, key: Path) -> str:
    """Dovecot on mail: POP3 (110, 995) and IMAP (143, 993), TLS from the lab CA, one user."""
    return f"""base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = pop3 imap
listen = 10.130.1.3
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = {NOBODY}
mail_location = maildir:{base}/mail/%u/Maildir
mail_max_userip_connections = 20
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/passwd
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={base}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 110
  }}
  inet_listener pop3s {{
    port = 995
    ssl = yes
  }}
  process_limit = 50
}}
service imap-login {{
  inet_listener imap {{
    port = 143
  }}
  inet_listener imaps {{
    port = 993
    ssl = yes
  }}
  process_limit = 50
}}
service anvil {{
  chroot =
}}
"""


def sshd_config(directory: Path, host_key: Path, authorized: Path) -> str:
    """OpenSSH's sshd on port 22 of a host: root by key only, nothing forwarded."""
    return (
        "Port 22\n"
        "ListenAddress 0.0.0.0\n"
        f"HostKey {host_key}\n"
        "PidFile none\n"
        "PermitRootLogin prohibit-password\n"
        "AllowUsers root\n"
        # the files are the playground's (root, 0600), but a test's directory may sit under
        # the sticky, world-writable /tmp, which strict modes refuse as an ancestor
        "StrictModes no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        f"AuthorizedKeysFile {authorized}\n"
        "UseDNS no\n"
        "AllowTcpForwarding no\n"
        "X11Forwarding no\n"
        "MaxStartups 10:30:60\n"
        "LoginGraceTime 20\n"
        "ClientAliveInterval 30\n"
        "Subsystem sftp internal-sftp\n"
        "LogLevel INFO\n"
    )


@dataclass(frozen=True)
class RealDaemon:
    """An installed daemon started instead of the lab's servers it ``replaces``."""

    server: HostServer
    replaces: tuple[str, ...]
    #: The SSH host key it presents (``TYPE BASE64``), for the hosts' ``known_hosts``.
    host_key: str = ""


def _find(name: str) -> str | None:
    return shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )


def real_servers(directory: Path, home: Path, prefix: str) -> list[RealDaemon]:
    """The installed daemons, their configurations written into ``directory/HOST/NAME``.

    ``home`` is the lab directory (its CA, the lab account's SSH key); ``prefix`` names the
    playground's scratch directory for Dovecot's mail.
    """
    found: list[RealDaemon] = []
    dnsmasq = _find("dnsmasq")
    if dnsmasq:
        here = directory / "backbone" / "dnsmasq"
        here.mkdir(parents=True, exist_ok=True)
        config = here / "dnsmasq.conf"
        config.write_text(dnsmasq_config(here / "queries.log"), encoding="ascii")
        argv = [dnsmasq, f"--conf-file={config}"]
        server = HostServer("backbone", "dnsmasq", argv, 53, ("backbone/dnsmasq",))
        found.append(RealDaemon(server, ("backbone/dns",)))
    dovecot = _find("dovecot")
    if dovecot and all(os.access(f"/usr/lib/dovecot/{p}", os.X_OK) for p in ("pop3", "imap")):
        found.append(_dovecot(dovecot, home, prefix))
    sshd = _find("sshd")
    if sshd and shutil.which("ssh-keygen"):
        found += _sshd(sshd, directory, home)
    nginx = _find("nginx")
    if nginx:
        www = directory / "www" / "nginx"
        for sub in (
            "html",
            *(f"tmp-{k}" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        ):
            (www / sub).mkdir(parents=True, exist_ok=True)
        (www / "html" / "index.html").write_text(INDEX, encoding="ascii")
        (www / "nginx.conf").write_text(nginx_config(www, "10.130.1.4"), encoding="ascii")
        argv = [nginx, "-c", str(www / "nginx.conf"), "-p", str(www)]
        found.append(RealDaemon(HostServer("www", "nginx", argv, 80, ("www/nginx",)), ("www/www",)))
    vsftpd = _find("vsftpd")
    if vsftpd:
        ftp = directory / "ftp" / "vsftpd"
        for sub in ("pub", "empty"):
            (ftp / sub).mkdir(parents=True, exist_ok=True)
        ftp.chmod(0o755)
        (ftp / "pub").chmod(0o555)  # vsftpd refuses a writable anonymous root
        (ftp / "empty").chmod(0o555)
        (ftp / "pub" / "README").write_text("the playground's ftp.example.com\n", encoding="ascii")
        (ftp / "vsftpd.conf").write_text(vsftpd_config(ftp, "10.130.1.2"), encoding="ascii")
        argv = [vsftpd, str(ftp / "vsftpd.conf")]
        found.append(
            RealDaemon(HostServer("ftp", "vsftpd", argv, 21, ("ftp/vsftpd",)), ("ftp/ftp",))
        )
    return found


def _group(name: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise WirelabError(f"no group {name!r}: is the {name} package installed?") from None


def _dovecot(binary: str, home: Path, prefix: str) -> RealDaemon:
    from wirelab.config import LAB_ACCOUNTS
    from wirelab.mail.seed import seed_messages
    from wirelab.net.ca import LabCA

    base = scratch_root() / f"wirelab-{prefix}-dovecot"
    base.mkdir(mode=0o711, exist_ok=True)
    base.chmod(0o711)  # nobody must reach mail/ below; nothing else here is theirs
    ca = LabCA.load_or_create(home / "ca")
    cert, key = ca.server_cert_for(["mail.example.com", "localhost"], home / "ca")
    (base / "passwd").write_text(
        "".join(f"{a.user}:{{PLAIN}}{a.password}::::::\n" for a in LAB_ACCOUNTS),
        encoding="ascii",
    )
    # read by Dovecot's auth process (user dovecot), nobody else
    os.chown(base / "passwd", 0, _group("dovecot"))
    (base / "passwd").chmod(0o640)
    mail = base / "mail"
    for account in LAB_ACCOUNTS:
        maildir = mail / account.user / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        if not any((maildir / "new").iterdir()) and not any((maildir / "cur").iterdir()):
            for number, data in enumerate(seed_messages()):
                name = f"{int(time.time())}.P{os.getpid()}Q{number}.playground"
                (maildir / "new" / name).write_bytes(data)
    for path in [mail, *mail.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    config = base / "dovecot.conf"
    config.write_text(dovecot_config(base, cert, key), encoding="ascii")
    server = HostServer(
        "mail", "dovecot", [binary, "-F", "-c", str(config)], 993, ("mail/dovecot",)
    )
    return RealDaemon(server, ("mail/pop3", "mail/imap"))


def _sshd(binary: str, directory: Path, home: Path) -> list[RealDaemon]:
    from wirelab.config import LAB_ACCOUNTS
    from wirelab.ssh.keys import account_keys, client_key_file

    here = directory / "sshd"
    here.mkdir(parents=True, exist_ok=True)
    here.chmod(0o755)
    key = here / "ssh_host_ed25519_key"
    if not key.exists():
        done = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "playground", "-f", str(key)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise WirelabError(f"ssh-keygen failed: {' '.join(done.stderr.split())[:200]}")
    users = [a.user for a in LAB_ACCOUNTS]
    account_keys(home, users)  # the lab account's key pair, made once
    authorized = here / "authorized_keys"
    keys = [client_key_file(home, u).with_suffix(".pub").read_text().strip() for u in users]
    authorized.write_text("\n".join(keys) + "\n", encoding="ascii")
    authorized.chmod(0o600)
    config = here / "sshd_config"
    config.write_text(sshd_config(here, key, authorized), encoding="ascii")
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    return [
        RealDaemon(
            HostServer(
                h.name, "sshd", [binary, "-D", "-e", "-f", str(config)], 22, (f"{h.name}/sshd",)
            ),
            (f"{h.name}/ssh",),
            public,
        )
        for h in HOSTS
    ]
