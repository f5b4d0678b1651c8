"""Geocoding providers: where to send a query, how to shape it, and how often (chapter 1).

* ``lab``: the lab geocoder's Nominatim-compatible ``/search`` (the default);
* ``lab-google``: the lab geocoder's Google-shaped ``/maps/api/geocode/json``;
* ``nominatim``: OpenStreetMap's public Nominatim. Its usage policy asks for an identifying
  User-Agent and at most one request per second; :class:`RateLimiter` enforces the second
  across threads and, through a small file in the user's cache directory
  (``~/.cache/wirelab/ratelimit/nominatim.last``), across processes;
* ``google``: Google's Geocoding API; it needs an API key (``--api-key`` or the
  ``WIRELAB_GOOGLE_API_KEY`` environment variable).

Every provider carries a verifying TLS context: the lab CA for the lab, the system's trust
store for the real services.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from wirelab import __version__
from wirelab.errors import ConfigError
from wirelab.geo._cachedir import user_cache_dir
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
    "rate_file",
]

log = logging.getLogger(__name__)

#: The names ``--provider`` accepts.
PROVIDERS = ("lab", "lab-google", "nominatim", "google")

#: Identifies wirelab to geocoders, as Nominatim's usage policy requires.
USER_AGENT = f"wirelab/{__version__} (Foundations of Python Network Programming exercises)"

#: Where the Google API key may come from when ``--api-key`` is not given.
GOOGLE_KEY_ENV = "WIRELAB_GOOGLE_API_KEY"


class RateLimiter:
    """At most one call per ``interval`` seconds: across threads, and with ``path``, processes.

    In a process, a lock and the monotonic clock space the calls. With ``path``, the time of
    the last call (wall clock, seconds since the epoch) is also kept in that small file, and
    each call reads, waits and writes it under an exclusive ``fcntl.flock``: processes that
    share the file, such as a shell loop of ``wirelab geo search --provider nominatim``, take
    turns and stay ``interval`` apart. A time in the file that lies in the future (the clock
    was set back) never makes a call wait more than one ``interval``; an unreadable file
    counts as no earlier call, and a file that cannot be opened leaves the in-process limit.
    """

    def __init__(
        self,
        interval: float,
        *,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self.path = path
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call is allowed; return the seconds waited."""
        with self._lock:
            began = self._clock()
            delay = max(0.0, self._next - began)
            shared = self._shared_file()
            if shared is None:
                if delay:
                    self._sleep(delay)
            else:
                with shared:
                    self._take_turn(shared, delay)
            done = self._clock()
            self._next = done + self.interval
            return done - began

    def _take_turn(self, shared: BinaryIO, delay: float) -> None:
        """Under the file's lock: wait for our turn (and ``delay``), then note the time."""
        try:
            fcntl.flock(shared, fcntl.LOCK_EX)  # released when the file is closed
            last = _read_time(shared)
        except OSError as exc:  # a file system without locks, say
            log.warning("rate limit kept in this process only: %s: %s", self.path, exc)
            last = None
        if last is not None:
            delay = max(delay, min(self.interval, last + self.interval - self._wall()))
        if delay > 0:
            self._sleep(delay)
        try:
            shared.seek(0)
            shared.truncate()
            shared.write(f"{self._wall():.6f}\n".encode("ascii"))
            shared.flush()
        except OSError as exc:
            log.warning("cannot note the time of this request in %s: %s", self.path, exc)

    def _shared_file(self) -> BinaryIO | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("rate limit kept in this process only: cannot open %s: %s", self.path, exc)
            return None
        return os.fdopen(fd, "r+b")


def _read_time(file: BinaryIO) -> float | None:
    file.seek(0)
    try:
        stamp = float(file.read(64).decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return stamp if math.isfinite(stamp) else None


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def rate_file(name: str) -> Path:
    """The file that paces provider ``name`` across processes, in the user's cache."""
    return user_cache_dir() / "ratelimit" / f"{name}.last"


def _limiter(name: str, interval: float, *, across_processes: bool = False) -> RateLimiter | None:
    if interval <= 0:
        return None
    path = rate_file(name) if across_processes else None
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault((name, str(path)), RateLimiter(interval, path=path))


@dataclass(frozen=True)
class Provider:
    """One geocoding service.

    Attributes:
        name: one of :data:`PROVIDERS`.
        style: ``"nominatim"`` or ``"google"``: the request and answer shapes.
        host: where to connect (a name, or the lab's address).
        port: the HTTPS port.
        tls_name: the name sent in SNI and checked in the certificate (requests, http.client
            when ``host`` is that name, raw).
        ssl_context: the verifying client context, which every way uses.
        ca_file: the CA file behind ``ssl_context``, for messages (``None``: the system's).
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
        limiter=_limiter("nominatim", 1.0, across_processes=True),
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
