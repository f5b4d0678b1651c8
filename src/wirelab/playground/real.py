"""``--real``: real daemons in the server room instead of the lab's own servers, where installed.

The book's playground ran vsftpd on ftp and a web server on www; with ``--real`` the
playground runs vsftpd (anonymous, read-only, in a directory of the host's own) on
ftp:21 and nginx (a static page) on www:80, each with a configuration written into the host's
directory, bound to the host's own address, in the foreground, logging there. A daemon that
is not installed is skipped, and ``status`` lists what runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from wirelab.playground.control import HostServer

__all__ = ["RealDaemon", "nginx_config", "real_servers", "vsftpd_config"]

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


def real_servers(host_dir: Path) -> list[RealDaemon]:
    """The installed daemons, their configurations written into ``host_dir/HOST/NAME``."""
    found: list[RealDaemon] = []
    nginx = _find("nginx")
    if nginx:
        www = host_dir / "www" / "nginx"
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
        ftp = host_dir / "ftp" / "vsftpd"
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
