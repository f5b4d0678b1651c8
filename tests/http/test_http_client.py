"""Our HTTP client (requests on recording connections) against the lab's httpbin under gunicorn.

Each test checks what the server says it received (httpbin echoes it) or what an independent
peer (curl) sees, not only our own view.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import pytest

from wirelab.errors import ConfigError, TLSError
from wirelab.http.client import (
    ContextAdapter,
    HTTPClient,
    HTTPStatusError,
    Recorder,
    framing_of,
    urllib_exchange,
)
from wirelab.net.tlsctx import client_context

from .conftest import Www


def test_get_agrees_with_curl(www: Www) -> None:
    """Done-when: curl with the lab CA and our client see the same httpbin answer."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    url = f"{www.https}/get?x=1"
    done = subprocess.run(
        [
            curl,
            "-sS",
            "--cacert",
            str(www.cafile),
            "--resolve",
            f"www.example.com:{www.https_port}:127.0.0.1",
            "-A",
            "agree/1",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    theirs = json.loads(done.stdout)
    with HTTPClient() as client:
        ours = json.loads(client.get(url, headers={"User-Agent": "agree/1"}).body)
    for key in ("args", "url", "origin"):
        assert ours[key] == theirs[key]
    assert ours["url"] == url
    assert (
        ours["headers"]["Host"] == theirs["headers"]["Host"] == f"www.example.com:{www.https_port}"
    )


def test_redirects_followed_with_history(www: Www) -> None:
    """F49: /status/301 -> /redirect/1 -> /get, with the history [301, 302]."""
    with HTTPClient() as client:
        exchange = client.get(f"{www.https}/status/301")
    assert exchange.status == 200
    assert exchange.url == f"{www.https}/get"
    assert [hop.status for hop in exchange.history] == [301, 302]
    assert [hop.location for hop in exchange.history] == ["/redirect/1", "/get"]


@pytest.mark.parametrize("code", [301, 302, 303, 307])
def test_no_follow_shows_the_redirect(www: Www, code: int) -> None:
    with HTTPClient() as client:
        exchange = client.get(f"{www.http}/status/{code}", follow=False)
    assert exchange.status == code
    assert exchange.history == []
    assert exchange.url == f"{www.http}/status/{code}"


def test_status_error_carries_status_and_headers(www: Www) -> None:
    """F50: 4xx/5xx raise with the status and the headers of the answer."""
    with HTTPClient() as client, pytest.raises(HTTPStatusError) as caught:
        client.get(f"{www.https}/status/418", raise_for_status=True)
    assert caught.value.code == 418
    names = {name.lower(): value for name, value in caught.value.headers}
    assert names["server"] == "gunicorn"
    assert "418 Client Error" in str(caught.value)
    with HTTPClient() as client, pytest.raises(HTTPStatusError) as caught:
        client.get(f"{www.https}/status/500", raise_for_status=True)
    assert caught.value.code == 500 and "Server Error" in str(caught.value)


def test_basic_auth(www: Www) -> None:
    """F51: 401 with its challenge without credentials; 200 with them on the session."""
    url = f"{www.https}/basic-auth/brandon/atigdngnatwwal"
    with HTTPClient() as client:
        denied = client.get(url)
    assert denied.status == 401
    assert dict((n.lower(), v) for n, v in denied.headers)["www-authenticate"].startswith("Basic")
    with HTTPClient(auth=("brandon", "atigdngnatwwal")) as client:
        granted = client.get(url)
    assert granted.status == 200
    assert json.loads(granted.body) == {"authenticated": True, "user": "brandon"}
    assert b"Authorization: Basic YnJhbmRvbjphdGlnZG5nbmF0d3dhbA==\r\n" in granted.request


def test_cookies_persist_across_the_session(www: Www) -> None:
    """F52: a cookie set by one response is sent with the next request."""
    with HTTPClient() as client:
        client.get(f"{www.http}/cookies/set?session-id=1234")
        exchange = client.get(f"{www.http}/cookies")
    assert json.loads(exchange.body) == {"cookies": {"session-id": "1234"}}
    assert b"Cookie: session-id=1234\r\n" in exchange.request
    with HTTPClient() as fresh:
        assert json.loads(fresh.get(f"{www.http}/cookies").body) == {"cookies": {}}


def test_connections_are_reused_and_counted(www: Www) -> None:
    """F53: three requests over one keep-alive connection; Connection: close costs three."""
    with HTTPClient() as client:
        numbers = [client.get(f"{www.https}/ip").connection for _ in range(3)]
        assert client.connections_opened == 1
    assert numbers == [1, 1, 1]
    with HTTPClient() as client:
        numbers = [
            client.get(f"{www.http}/ip", headers={"Connection": "close"}).connection
            for _ in range(3)
        ]
        assert client.connections_opened == 3
    assert numbers == [1, 2, 3]


def test_recorded_request_is_what_the_server_received(www: Www) -> None:
    with HTTPClient() as client:
        exchange = client.get(f"{www.http}/headers")
    echoed = json.loads(exchange.body)["headers"]
    head = exchange.request.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == "GET /headers HTTP/1.1"
    sent = dict(line.split(": ", 1) for line in head[1:])
    assert {k.lower(): v for k, v in sent.items()} == {k.lower(): v for k, v in echoed.items()}


def test_framing_is_reported(www: Www) -> None:
    with HTTPClient() as client:
        assert client.get(f"{www.http}/stream/3").framing == "chunked"
        fixed = client.get(f"{www.http}/bytes/100")
        assert fixed.framing == "Content-Length: 100" and len(fixed.body) == 100
        assert client.request("HEAD", f"{www.http}/get").framing == "no body"
    assert framing_of("GET", 200, [("Connection", "close")]) == (
        "until the server closed the connection"
    )


def test_requests_and_urllib_headers_differ(www: Www) -> None:
    """F48: the two libraries' default request headers, as httpbin received them."""
    with HTTPClient() as client:
        ours = json.loads(client.get(f"{www.https}/headers").body)["headers"]
    status, sent, body = urllib_exchange(f"{www.https}/headers")
    theirs = json.loads(body)["headers"]
    assert status == 200
    assert ours["User-Agent"].startswith("python-requests/")
    assert theirs["User-Agent"].startswith("Python-urllib/")
    assert theirs["Accept-Encoding"] == "identity" and "gzip" in ours["Accept-Encoding"]
    assert ours["Connection"] == "keep-alive" and theirs["Connection"] == "close"
    assert b"User-Agent: Python-urllib/" in sent


def test_untrusted_certificate_is_refused(www: Www) -> None:
    """The system store does not trust the lab CA: a TLS error, one line."""
    with HTTPClient(ssl_context=client_context()) as client, pytest.raises(TLSError) as caught:
        client.get(f"{www.https}/get")
    assert "certificate verify failed" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_verification_cannot_be_turned_off() -> None:
    loose = ssl.create_default_context()
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    with pytest.raises(ConfigError):
        ContextAdapter(loose, Recorder())


def test_body_limit(www: Www) -> None:
    from wirelab.errors import RemoteProtocolError

    with HTTPClient(max_body=1000) as client, pytest.raises(RemoteProtocolError):
        client.get(f"{www.http}/bytes/5000")


def test_bad_url_is_a_config_error() -> None:
    with HTTPClient() as client, pytest.raises(ConfigError):
        client.get("ftp://www.example.com/")
