"""The lab's web host ``www.example.com`` (chapters 9 and 10): httpbin under gunicorn.

As in the book's playground, where the www host ran httpbin under gunicorn on port 80 and, with
the www certificate, on 443. Here one gunicorn (a child process of the lab: one ``gthread``
worker of 32 threads) serves httpbin on a private loopback socket, and the lab's two endpoints
are the buffering front of chapter 10's second deployment architecture
(:mod:`wirelab.http.front`): ``http`` (10080) and ``https`` (10444, a lab-CA certificate for
``www.example.com`` and the loopback addresses). The front reads each request whole before
gunicorn sees it, so clients that trickle or stall cost a coroutine, not one of gunicorn's
threads; responses keep gunicorn's status line and headers (``Server: gunicorn``).

The serving itself (child process started from the lab's event-loop thread so it dies with it,
watched every half second, restarted at most three times a minute on the same socket, stopped
by PID) is :class:`wirelab.web.serving.WSGIService`, which chapter 11's apps share.
"""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import LabContext
from wirelab.web.serving import WebEndpoint, WSGIService

__all__ = ["SERVICES", "WWW_HOST", "WwwService"]

#: The playground name of the web host.
WWW_HOST = "www.example.com"
#: How gunicorn loads httpbin (through our loader, which quiets its flasgger warning).
HTTPBIN_APP = "wirelab.http.apps:build('httpbin')"


class WwwService(WSGIService):
    """httpbin under gunicorn, behind the buffering front on HTTP and HTTPS."""

    name = "www"
    host = WWW_HOST
    chapter = 9
    description = "httpbin under gunicorn, HTTP and HTTPS (chapters 9 and 10)"
    app = HTTPBIN_APP
    threads = 32  # httpbin's /delay/10 and /drip hold a thread for their length

    def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
        return (WebEndpoint("http"), WebEndpoint("https", tls=True))


SERVICES = (WwwService(),)
