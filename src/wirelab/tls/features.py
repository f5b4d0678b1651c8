"""What the local ``ssl`` module and OpenSSL support (chapter 6's ``features.py``, F29).

The book's script printed the ``PROTOCOL_*``, ``CERT_*``, ``VERIFY_*``, ``OP_*`` and ``HAS_*``
constants. :func:`features` gathers them in one document, and adds what they mean here:
which TLS versions OpenSSL was built with versus which a default context will negotiate,
the default context's settings (security level, cipher suites, verification), and the
system trust store the default context loads.
"""

from __future__ import annotations

import ssl
import sys
import warnings
from typing import Any

__all__ = ["features"]

_VERSIONS = (
    ("SSLv2", "SSLv2", None),
    ("SSLv3", "SSLv3", "SSLv3"),
    ("TLSv1.0", "TLSv1", "TLSv1"),
    ("TLSv1.1", "TLSv1_1", "TLSv1_1"),
    ("TLSv1.2", "TLSv1_2", "TLSv1_2"),
    ("TLSv1.3", "TLSv1_3", "TLSv1_3"),
)


def _constants(prefix: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in sorted(dir(ssl)):
            if name.startswith(prefix):
                value = getattr(ssl, name)
                if isinstance(value, int):
                    found[name] = int(value)
    return found


def _flag_names(value: int, members: dict[str, int]) -> list[str]:
    return [name for name, bit in members.items() if bit and bit & (bit - 1) == 0 and value & bit]


def _version_name(version: ssl.TLSVersion) -> str:
    return version.name


def features() -> dict[str, Any]:
    """Return the local TLS capabilities as a JSON-ready document."""
    ctx = ssl.create_default_context()
    stats_before = ctx.cert_store_stats()
    minimum, maximum = ctx.minimum_version, ctx.maximum_version
    versions: dict[str, dict[str, bool]] = {}
    for label, has, enum_name in _VERSIONS:
        built = bool(getattr(ssl, f"HAS_{has}", False))
        default = False
        if built and enum_name is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                member = getattr(ssl.TLSVersion, enum_name)
            low = minimum if minimum != ssl.TLSVersion.MINIMUM_SUPPORTED else member
            high = maximum if maximum != ssl.TLSVersion.MAXIMUM_SUPPORTED else member
            default = low <= member <= high
        versions[label] = {"built_in": built, "default_context": default}
    options = _constants("OP_")
    verify = _constants("VERIFY_")
    paths = ssl.get_default_verify_paths()
    return {
        "python": sys.version.split()[0],
        "openssl_version": ssl.OPENSSL_VERSION,
        "openssl_version_info": list(ssl.OPENSSL_VERSION_INFO),
        "has": {name[4:]: bool(value) for name, value in _constants("HAS_").items()},
        "versions": versions,
        "default_context": {
            "minimum_version": _version_name(minimum),
            "maximum_version": _version_name(maximum),
            "security_level": getattr(ctx, "security_level", None),
            "verify_mode": ctx.verify_mode.name,
            "check_hostname": ctx.check_hostname,
            "verify_flags": _flag_names(int(ctx.verify_flags), verify),
            "options": _flag_names(int(ctx.options), options),
            "ciphers": [c["name"] for c in ctx.get_ciphers()],
        },
        "trust_store": {
            "cafile": paths.cafile,
            "capath": paths.capath,
            "certificates": stats_before.get("x509_ca", 0),
        },
        "constants": {
            "PROTOCOL": _constants("PROTOCOL_"),
            "CERT": _constants("CERT_"),
            "VERIFY": verify,
            "OP": options,
        },
    }
