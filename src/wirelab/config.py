"""Settings shared by the library, the lab and the CLI: paths, default ports, lab accounts.

Default ports are stable and documented (docs/lab.md). The rule: a book port above 1024 is
kept as it is (1060, 11211, 6700 ...); a well-known port below 1024 is shifted by +10000
(DNS 53 -> 10053, SMTP 25 -> 10025, HTTPS 443 -> 10443), so the lab never needs root. Where
the book put several services on one port (1060), the later chapters move up by one.
Tests use port 0 instead (``port_mode="ephemeral"``) and read the real ports from the lab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wirelab.errors import ConfigError

__all__ = [
    "DEFAULT_PORTS",
    "FTP_PASSIVE_PORTS",
    "LAB_ACCOUNTS",
    "LOOPBACK",
    "Account",
    "default_port",
    "private_dir",
    "state_dir",
]

#: Where everything binds unless the user asks for another address.
LOOPBACK = "127.0.0.1"

#: (service, endpoint) -> default port. One place, so two services never collide.
DEFAULT_PORTS: dict[tuple[str, str], int] = {
    # chapter 2: UDP request/reply (the book's 1060)
    ("udp", "udp"): 1060,
    ("udp", "lossy"): 1061,
    # chapter 3: TCP 16-byte exchange (1060) and the upper-casing echo of the deadlock demo
    ("tcp", "sixteen"): 1060,
    ("tcp", "upper"): 1061,
    # chapter 5: framing by EOF and by length prefix
    ("blocks", "stream"): 1062,
    ("blocks", "blocks"): 1063,
    # chapter 1: the geocoding service (HTTPS; Nominatim-compatible)
    ("geo", "https"): 10443,
    # chapter 4: the lab DNS server, UDP and TCP
    ("dns", "udp"): 10053,
    ("dns", "tcp"): 10053,
    # chapter 6: the TLS greeting server, client-auth server and broken-certificate lessons
    ("tls", "greeting"): 11060,
    ("tls", "clientauth"): 11061,
    ("tls", "expired"): 11062,
    ("tls", "wronghost"): 11063,
    ("tls", "selfsigned"): 11064,
    ("tls", "untrusted"): 11065,
    ("tls", "weakkey"): 11066,
    # chapter 7: the Zen server (the book's 1060, moved to 1070) and the inetd styles
    ("zen", "zen"): 1070,
    ("zen", "inetd-nowait"): 1071,
    ("zen", "inetd-wait"): 1072,
    # chapter 8: memcached (the book's 11211; extra nodes count up) and ZeroMQ (6700-6702)
    ("cache", "memcached"): 11211,
    ("queue", "pub"): 6700,
    ("queue", "rep"): 6701,
    ("queue", "pull"): 6702,
    # chapter 18: XML-RPC (7001), JSON-RPC (7002) and RPyC (18861), the book's ports
    ("rpc", "xmlrpc"): 7001,
    ("rpc", "jsonrpc"): 7002,
    ("rpc", "rpyc"): 18861,
    # chapter 17: FTP with explicit FTPS (the book's 21) and implicit FTPS (990)
    ("ftp", "ftp"): 10021,
    ("ftp", "ftps"): 10990,
    # chapters 9-10: the web host (httpbin under gunicorn) on HTTP (80) and HTTPS (443; 10443
    # is the geocoder's, so 10444), and `http serve`'s default (the book's gunicorn 8000)
    ("www", "http"): 10080,
    ("www", "https"): 10444,
    ("http", "serve"): 8000,
    # chapter 11: the payments app (the book's Flask 5000, shifted): insecure on HTTP, hardened
    # on HTTPS, the attacker's pages on a port of their own; the Django app; the test site
    ("bank", "insecure"): 10500,
    ("bank", "hardened"): 10501,
    ("bank", "attacker"): 10502,
    ("djbank", "https"): 10503,
    ("tinysite", "http"): 10504,
    # chapter 13: the mail host's SMTP (the book's 25, STARTTLS and AUTH) and implicit TLS (465)
    ("smtp", "smtp"): 10025,
    ("smtp", "smtps"): 10465,
    # chapters 14-15: POP3 (the book's 110) and POP3S (995); IMAP (143) and IMAPS (993)
    ("pop3", "pop3"): 10110,
    ("pop3", "pop3s"): 10995,
    ("imap", "imap"): 10143,
    ("imap", "imaps"): 10993,
    # chapter 16: SSH (the book's 22) and Telnet (23), shifted
    ("ssh", "ssh"): 10022,
    ("telnet", "telnet"): 10023,
}

#: The lab FTP server's passive data ports (first, last): fixed, so a firewall rule can name
#: them; below Linux's ephemeral range (32768+). Tests (ephemeral ports) use any free port.
FTP_PASSIVE_PORTS: tuple[int, int] = (30000, 30049)


def default_port(service: str, endpoint: str) -> int:
    """Return the documented default port of ``service``'s ``endpoint`` (0 if it has none)."""
    return DEFAULT_PORTS.get((service, endpoint), 0)


@dataclass(frozen=True)
class Account:
    """A lab login: the book's accounts, for the lab's own servers only."""

    user: str
    password: str


#: The book's playground accounts (the logins of its chapters 14-16 examples). Lab-only, never
#: for real servers.
LAB_ACCOUNTS: tuple[Account, ...] = (Account("brandon", "abc123"),)


def state_dir() -> Path:
    """Return the lab's state directory.

    ``$WIRELAB_HOME`` wins; otherwise ``$XDG_STATE_HOME/wirelab`` (``~/.local/state/wirelab``).
    """
    explicit = os.environ.get("WIRELAB_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wirelab"


def private_dir(directory: Path) -> Path:
    """Create ``directory`` (and its parents) readable only by its owner, and return it.

    An existing directory is made ``0700`` too: the lab's directory holds passwords, keys
    and logs of other people's connections.

    Raises:
        ConfigError: it cannot be created or is not ours to change (and why).
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {directory} as a private directory: {exc.strerror or exc}"
        ) from exc
    return directory
