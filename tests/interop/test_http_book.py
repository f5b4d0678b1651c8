"""Chapter 9's doctests (examples.doctest) against the lab's httpbin, adapted only in host names.

The book ran them against ``gunicorn httpbin:app`` on ``localhost:8000``; here the host and
port are the lab web host's. The calls, and the results they assert, are the book's, with the
one change the book's notes predict: modern requests appends ``for url: ...`` to an
HTTPError's message. Then the standard library (``urllib``, ``http.client``) and curl over
HTTPS with the lab CA, as the issue's done-when asks.
"""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from wirelab.lab.state import LabState, ServiceView


@pytest.fixture
def base(lab_www: ServiceView) -> str:
    """The book's ``http://localhost:8000``, as the lab's address."""
    host, port = lab_www.endpoint("http").sockaddr
    return f"http://{host}:{port}"


def test_requests_status_and_redirects(base: str) -> None:
    r = requests.get(f"{base}/status/200", timeout=10)
    r.raise_for_status()
    assert r.status_code == 200
    for code in (301, 303, 307):
        r = requests.get(f"{base}/status/{code}", timeout=10)
        r.raise_for_status()
        assert (r.status_code, r.url) == (200, f"{base}/get")
    for code, kind, reason in (
        (400, "Client", "BAD REQUEST"),
        (500, "Server", "INTERNAL SERVER ERROR"),
    ):
        r = requests.get(f"{base}/status/{code}", timeout=10)
        with pytest.raises(requests.exceptions.HTTPError) as caught:
            r.raise_for_status()
        assert str(caught.value).startswith(f"{code} {kind} Error: {reason}")
        assert r.status_code == code
        del caught  # its traceback holds the response and its socket
        r.close()


def test_requests_without_following(base: str) -> None:
    for code in (301, 303, 307):
        r = requests.get(f"{base}/status/{code}", allow_redirects=False, timeout=10)
        r.raise_for_status()
        assert (r.status_code, r.url) == (code, f"{base}/status/{code}")


def test_redirect_history(base: str) -> None:
    r = requests.get(f"{base}/status/301", timeout=10)
    assert [h.status_code for h in r.history] == [301, 302]


def test_urllib_status_and_redirects(base: str) -> None:
    with urllib.request.urlopen(f"{base}/status/200", timeout=10) as r:
        assert r.status == 200
    for code in (301, 303, 307):
        with urllib.request.urlopen(f"{base}/status/{code}", timeout=10) as r:
            assert (r.status, r.url) == (200, f"{base}/get")
    for code, reason in ((400, "BAD REQUEST"), (500, "INTERNAL SERVER ERROR")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{base}/status/{code}", timeout=10)
        with caught.value:
            assert str(caught.value) == f"HTTP Error {code}: {reason}"
            assert caught.value.status == code
            assert caught.value.headers["Server"] == "gunicorn"


def test_headers_basic_auth_and_cookies(base: str) -> None:
    r = requests.get(f"{base}/headers", timeout=10)
    assert r.json()["headers"]["User-Agent"].startswith("python-requests/")
    with urllib.request.urlopen(f"{base}/headers", timeout=10) as u:
        assert json.loads(u.read())["headers"]["User-Agent"].startswith("Python-urllib/")
    url = f"{base}/basic-auth/brandon/atigdngnatwwal"
    with requests.Session() as s:
        assert s.get(url, timeout=10).status_code == 401
        s.auth = ("brandon", "atigdngnatwwal")
        assert s.get(url, timeout=10).json() == {"authenticated": True, "user": "brandon"}
    with requests.Session() as s:
        s.get(f"{base}/cookies/set?session-id=1234", timeout=10)
        assert s.get(f"{base}/cookies", timeout=10).json() == {"cookies": {"session-id": "1234"}}


def test_http_client_two_requests_one_connection(lab_www: ServiceView) -> None:
    """F53: the book's two requests on one HTTPConnection (each body read before the next:
    on a keep-alive server, unread bodies would raise ResponseNotReady)."""
    host, port = lab_www.endpoint("http").sockaddr
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/ip")
        first = conn.getresponse()
        assert json.loads(first.read()) == {"origin": "127.0.0.1"}
        sock = conn.sock
        conn.request("GET", "/user-agent")
        second = conn.getresponse()
        assert "user-agent" in json.loads(second.read())
        assert conn.sock is sock  # the same TCP connection carried both
    finally:
        conn.close()


def _https(lab_www: ServiceView) -> tuple[str, int]:
    return lab_www.endpoint("https").sockaddr


def test_http_client_https_with_the_lab_ca(wirelab_lab: LabState, lab_www: ServiceView) -> None:
    host, port = _https(lab_www)
    ctx = wirelab_lab.ssl_context()
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
    try:
        conn.request("GET", "/get", headers={"Host": f"www.example.com:{port}"})
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["url"] == f"https://www.example.com:{port}/get"
    finally:
        conn.close()
    # and the name is checked: a context that trusts only the system store refuses
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/get")
    conn.close()


def test_urllib_https_with_the_lab_ca(wirelab_lab: LabState, lab_www: ServiceView) -> None:
    host, port = _https(lab_www)
    ctx = wirelab_lab.ssl_context()
    with urllib.request.urlopen(f"https://{host}:{port}/status/301", context=ctx, timeout=10) as r:
        assert (r.status, r.url) == (200, f"https://{host}:{port}/get")


def test_curl_https_with_the_lab_ca(wirelab_lab: LabState, lab_www: ServiceView) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    _, port = _https(lab_www)
    cafile = Path(wirelab_lab.directory) / "ca" / "ca.pem"
    done = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(cafile),
            "--resolve",
            f"www.example.com:{port}:127.0.0.1",
            "-u",
            "brandon:atigdngnatwwal",
            f"https://www.example.com:{port}/basic-auth/brandon/atigdngnatwwal",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"authenticated": True, "user": "brandon"}
    refused = subprocess.run(
        [
            curl,
            "-sS",
            "--resolve",
            f"www.example.com:{port}:127.0.0.1",
            f"https://www.example.com:{port}/get",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert refused.returncode == 60  # curl: peer certificate cannot be authenticated
