"""Certificate name matching (RFC 6125 §6.4, RFC 2818 §3.1), pure: no sockets, no OpenSSL.

The inspector checks the names itself, apart from OpenSSL, so that it can say *why* a name
does not match even when verification failed for another reason first. The rules:

* a DNS name is compared case-insensitively, ignoring one trailing dot (RFC 6125 §6.4.1);
* a wildcard is allowed only as the whole left-most label (``*.example.com``), matches exactly
  one non-empty label, and needs at least two labels after it (RFC 6125 §6.4.3; no ``*.com``);
* an IP address matches only an IP address entry, never a DNS name (RFC 6125 §6.2.2,
  RFC 2818 §3.1); a DNS name never matches an IP address entry;
* the subject's common name is not consulted (RFC 6125 §6.4.4 allows it only as a legacy
  fallback, and browsers and Python 3.7+ ignore it when there is a subjectAltName).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["is_ip_address", "match_name", "normalize_dns_name"]


def is_ip_address(name: str) -> bool:
    """True when ``name`` is an IPv4 or IPv6 address literal (brackets allowed for IPv6)."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_dns_name(name: str) -> str:
    """Lower-case ``name`` and drop one trailing dot; IDNs become their A-label form."""
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return text.lower()
    return text.lower()


def _wildcard_match(pattern: str, name: str) -> bool:
    p_labels = pattern.split(".")
    n_labels = name.split(".")
    if p_labels[0] != "*" or "*" in ".".join(p_labels[1:]):
        return False
    if len(p_labels) < 3 or len(p_labels) != len(n_labels):
        return False
    if not n_labels[0] or n_labels[0].startswith("xn--"):
        return False  # RFC 6125 §6.4.3: no wildcard match inside an IDN's A-label
    return p_labels[1:] == n_labels[1:]


def match_name(
    servername: str, dns_names: Iterable[str], ip_addresses: Iterable[str] = ()
) -> str | None:
    """Return the certificate entry that ``servername`` matches, or ``None``.

    Args:
        servername: the name (or address) the client meant to reach.
        dns_names: the certificate's subjectAltName DNS entries.
        ip_addresses: the certificate's subjectAltName IP address entries.
    """
    if is_ip_address(servername):
        wanted = ipaddress.ip_address(servername.strip("[]"))
        for entry in ip_addresses:
            try:
                if ipaddress.ip_address(entry) == wanted:
                    return entry
            except ValueError:
                continue
        return None
    name = normalize_dns_name(servername)
    if not name:
        return None
    for entry in dns_names:
        pattern = normalize_dns_name(entry)
        if "*" in pattern:
            if _wildcard_match(pattern, name):
                return entry
        elif pattern == name:
            return entry
    return None
