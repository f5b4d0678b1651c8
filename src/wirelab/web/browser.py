"""A real browser for chapter 11: Playwright driving the system's headless Chromium.

Never a browser that Playwright downloads: Debian's ``/usr/bin/chromium`` (the Makefile installs
it with apt-get), or the one ``WIRELAB_CHROMIUM`` names. The browser trusts the lab CA, and only
for its own run: the CA goes into a throw-away NSS database under a temporary ``HOME``, so HTTPS
pages of the lab verify as in any browser and nothing of the machine's trust changes. Nothing is
turned off: no ``ignore_https_errors``.

Where Chromium cannot run, :func:`unavailable_reason` says why in one line, so a caller can skip a
browser step with that reason instead of failing (or passing) silently::

    from wirelab.web.browser import lab_browser, unavailable_reason

    if (why := unavailable_reason()) is None:
        with lab_browser(ca_file=state.ca) as browser:
            page = browser.new_page()
            page.goto("https://127.0.0.1:10444/get")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from wirelab.errors import ConfigError, WirelabError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["BrowserUnavailable", "chromium_path", "lab_browser", "unavailable_reason"]

#: Where Debian's package puts Chromium; ``WIRELAB_CHROMIUM`` overrides it.
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: How long a launch may take before we call the browser broken (seconds).
LAUNCH_TIMEOUT = 30.0


class BrowserUnavailable(WirelabError):
    """Chromium or Playwright is missing, or the browser would not start."""


def chromium_path() -> Path:
    """The Chromium executable to drive (``WIRELAB_CHROMIUM`` or Debian's).

    Raises:
        BrowserUnavailable: it is not there or not executable.
    """
    path = Path(os.environ.get("WIRELAB_CHROMIUM") or DEFAULT_CHROMIUM)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrowserUnavailable(
            f"no Chromium at {path} (install it with: apt-get install chromium, "
            "or set WIRELAB_CHROMIUM)"
        )
    return path


@cache
def unavailable_reason() -> str | None:
    """Why no browser can run here (one line), or ``None`` when one can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    try:
        chromium_path()
    except BrowserUnavailable as exc:
        return str(exc)
    if shutil.which("certutil") is None:
        return (
            "certutil is missing, so the browser cannot trust the lab CA "
            "(apt-get install libnss3-tools)"
        )
    return None


def _nss_home(home: Path, ca_file: Path | None) -> None:
    """Make ``home/.pki/nssdb`` an NSS database that trusts ``ca_file`` for TLS servers."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    certutil = shutil.which("certutil")
    if certutil is None:
        raise BrowserUnavailable(unavailable_reason() or "certutil is missing")
    steps = [[certutil, "-N", "-d", f"sql:{db}", "--empty-password"]]
    if ca_file is not None:
        steps.append(
            [
                certutil,
                "-A",
                "-d",
                f"sql:{db}",
                "-n",
                "wirelab lab CA",
                "-t",
                "C,,",
                "-i",
                str(ca_file),
            ]
        )
    for argv in steps:
        done = subprocess.run(  # noqa: S603 (our own argv: certutil and temp paths)
            argv, capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise BrowserUnavailable(
                f"certutil failed: {done.stderr.strip() or done.stdout.strip()}"
            )


@contextlib.contextmanager
def lab_browser(
    ca_file: str | Path | None = None, *, args: tuple[str, ...] = ()
) -> Iterator[Browser]:
    """Start headless Chromium through Playwright; it trusts ``ca_file`` (the lab CA) if given.

    ``args`` are extra Chromium switches (``--host-resolver-rules=...`` to map lab names). As
    root, Chromium's sandbox cannot start, so ``--no-sandbox`` is added then (and only then).

    Raises:
        BrowserUnavailable: Playwright or Chromium is missing, or the browser did not start.
        ConfigError: ``ca_file`` does not exist.
    """
    why = unavailable_reason()
    if why is not None:
        raise BrowserUnavailable(why)
    ca = Path(ca_file) if ca_file is not None else None
    if ca is not None and not ca.is_file():
        raise ConfigError(f"no CA file at {ca}")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    switches = list(args)
    if os.geteuid() == 0:
        switches.append("--no-sandbox")
    with tempfile.TemporaryDirectory(prefix="wirelab-browser-") as tmp:
        home = Path(tmp)
        _nss_home(home, ca)
        env: dict[str, str | float | bool] = {
            k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY"))
        }
        env["HOME"] = str(home)
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(
                    executable_path=str(chromium_path()),
                    args=switches,
                    env=env,
                    timeout=LAUNCH_TIMEOUT * 1000,
                )
            except PlaywrightError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BrowserUnavailable(f"Chromium did not start: {first}") from exc
            try:
                yield browser
            finally:
                browser.close()
