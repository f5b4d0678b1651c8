"""Geocoding providers: where to send a query, how to shape it, and how often (chapter 1).

* ``lab``: the lab geocoder's Nominatim-compatible ``/search`` (the default);
* ``lab-google``: the lab geocoder's Google-shaped ``/maps/api/geocode/json``;
* ``nominatim``: OpenStreetMap's public Nominatim. Its usage policy asks for an identifying
  User-Agent and at most one request per second; :class:`RateLimiter` enforces the second
  within a process;
* ``google``: Google's Geocoding API; it needs an API key (``--api-key`` or the
  ``WIRELAB_GOOGLE_API_KEY`` environment variable).

Every provider carries a verifying TLS context: the lab CA for the lab, the system's trust
store for the real services.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from wirelab import __version__
from wirelab.errors import ConfigError
from wirelab.lab.state import LabState
from wirelab.net.tlsctx import client_context

__all__ = [
    "GOOGLE_KEY_ENV",
    "PROVIDERS",
    "USER_AGENT",
    "Provider",
    "RateLimiter",
    "google_provider",
    "lab_provider",
    "make_provider",
    "nominatim_provider",
]

#: The names ``--provider`` accepts.
PROVIDERS = ("lab", "lab-google", "nominatim", "google")

#: Identifies wirelab to geocoders, as Nominatim's usage policy requires.
USER_AGENT = f"wirelab/{__version__} (Foundations of Python Network Programming exercises)"

#: Where the Google API key may come from when ``--api-key`` is not given.
GOOGLE_KEY_ENV = "WIRELAB_GOOGLE_API_KEY"


class RateLimiter:
    """At most one call per ``interval`` seconds, across the threads of one process."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call is allowed; return the seconds waited."""
        with self._lock:
            now = self._clock()
            delay = max(0.0, self._next - now)
            if delay:
                self._sleep(delay)
            self._next = max(now, self._next) + self.interval
            return delay


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _limiter(name: str, interval: float) -> RateLimiter | None:
    if interval <= 0:
        return None
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(name, RateLimiter(interval))


@dataclass(frozen=True)
class Provider:
    """One geocoding service.

    Attributes:
        name: one of :data:`PROVIDERS`.
        style: ``"nominatim"`` or ``"google"``: the request and answer shapes.
        host: where to connect (a name, or the lab's address).
        port: the HTTPS port.
        tls_name: the name sent in SNI and checked in the certificate (raw way).
        ssl_context: the verifying client context.
        ca_file: the CA bundle for requests (``None``: its default bundle).
        user_agent: the User-Agent header.
        api_key: Google's key (never logged).
        limiter: the request-rate limit, if the provider sets one.
    """

    name: str
    style: str
    host: str
    port: int
    tls_name: str
    ssl_context: ssl.SSLContext
    ca_file: str | None = None
    user_agent: str = USER_AGENT
    api_key: str | None = None
    limiter: RateLimiter | None = None

    @property
    def netloc(self) -> str:
        """``host:port`` (IPv6 in brackets), as URLs and the Host header want it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``https://host:port``."""
        return f"https://{self.netloc}"

    def target(self, address: str, limit: int = 1) -> str:
        """The request target (path and query string) asking for ``address``."""
        if self.style == "google":
            params = {"address": address} | ({"key": self.api_key} if self.api_key else {})
            return "/maps/api/geocode/json?" + urlencode(params)
        return "/search?" + urlencode({"q": address, "format": "json", "limit": limit})

    def redacted(self, target: str) -> str:
        """``target`` with the API key hidden, for messages and logs."""
        return target.replace(self.api_key, "<redacted>") if self.api_key else target

    def pace(self) -> None:
        """Wait as the provider's rate limit requires (no-op for the lab)."""
        if self.limiter is not None:
            self.limiter.wait()


def lab_provider(state: LabState | None = None, *, style: str = "nominatim") -> Provider:
    """The running lab's geocoder (``state`` defaults to the lab found on this machine).

    Raises:
        ConfigError: no lab runs, or it has no geocoder.
    """
    state = state or LabState.load()
    endpoint = state.endpoint("geo", "https")
    return Provider(
        name="lab" if style == "nominatim" else "lab-google",
        style=style,
        host=endpoint.address,
        port=endpoint.port,
        tls_name=endpoint.host,
        ssl_context=state.ssl_context(),
        ca_file=state.ca,
        api_key="lab-key-not-secret" if style == "google" else None,
    )


def nominatim_provider(user_agent: str = USER_AGENT) -> Provider:
    """OpenStreetMap's public Nominatim, paced at one request per second."""
    host = "nominatim.openstreetmap.org"
    return Provider(
        name="nominatim",
        style="nominatim",
        host=host,
        port=443,
        tls_name=host,
        ssl_context=client_context(),
        user_agent=user_agent,
        limiter=_limiter("nominatim", 1.0),
    )


def google_provider(api_key: str | None = None) -> Provider:
    """Google's Geocoding API.

    Raises:
        ConfigError: no API key was given or found in the environment.
    """
    key = api_key or os.environ.get(GOOGLE_KEY_ENV)
    if not key:
        raise ConfigError(f"the google provider needs an API key: --api-key or ${GOOGLE_KEY_ENV}")
    host = "maps.googleapis.com"
    return Provider(
        name="google",
        style="google",
        host=host,
        port=443,
        tls_name=host,
        ssl_context=client_context(),
        api_key=key,
        limiter=_limiter("google", 0.02),
    )


def make_provider(name: str, *, api_key: str | None = None) -> Provider:
    """The provider called ``name`` (one of :data:`PROVIDERS`).

    Raises:
        ConfigError: unknown name, no lab running (lab providers), or no Google key.
    """
    if name == "lab":
        return lab_provider()
    if name == "lab-google":
        return lab_provider(style="google")
    if name == "nominatim":
        return nominatim_provider()
    if name == "google":
        return google_provider(api_key)
    raise ConfigError(f"unknown provider {name!r} (one of {', '.join(PROVIDERS)})")
