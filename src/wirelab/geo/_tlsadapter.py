"""A requests transport adapter that speaks TLS with our context and our TLS name.

``requests.get(url, verify=...)`` builds its own TLS settings: certifi's CA bundle (or the
file given), urllib3's context (no ``VERIFY_X509_STRICT``), and the URL's host as the name to
check. Against the lab, whose URL holds an IP address, that checks the certificate for the
IP instead of ``nominatim.example.com``. :class:`ContextAdapter` hands urllib3 (2.x pool
keywords ``ssl_context`` and ``server_hostname``) the provider's
:func:`wirelab.net.tlsctx.client_context` and TLS name instead, so SNI carries the name, the
certificate is checked for it by OpenSSL (``check_hostname`` stays on in our context), and
only the context's own CAs are trusted.

Verification cannot be turned off through this adapter: ``verify=False`` and any CA bundle
(``verify="file"``, ``$REQUESTS_CA_BUNDLE``, ``$CURL_CA_BUNDLE``) are ignored, since loading a
bundle would add its CAs to the shared context, and ``CERT_NONE`` would switch it off for
every user of that context.
"""

from __future__ import annotations

import ssl
from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter

from wirelab.errors import ConfigError

__all__ = ["ContextAdapter"]


class ContextAdapter(HTTPAdapter):
    """HTTPS through ``ssl_context``, checking and sending ``server_hostname``."""

    def __init__(self, ssl_context: ssl.SSLContext, server_hostname: str, **kwargs: Any) -> None:
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigError(
                "ContextAdapter needs a verifying context (CERT_REQUIRED, host names)"
            )
        self._tls = {"ssl_context": ssl_context, "server_hostname": server_hostname}
        super().__init__(**kwargs)  # calls init_poolmanager

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **(pool_kwargs | self._tls))

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through an HTTPS proxy (CONNECT), the target's TLS still uses our context and name.
        return super().proxy_manager_for(proxy, **(proxy_kwargs | self._tls))

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # Called on the pool before every request. requests would set the pool's CA bundle
        # here (certifi's, or verify="file", $REQUESTS_CA_BUNDLE), for urllib3 to load into
        # our context, or CERT_NONE for verify=False; the trust is the context's alone.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None
        if cert:
            raise ConfigError("client certificates belong in the SSLContext, not in cert=")
