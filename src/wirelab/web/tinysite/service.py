"""The lab service ``tinysite``: the test site on the web host, under gunicorn behind the front.

Port 10504 (``http``); the pages answer to ``www.example.com`` as the book's ``tinysite`` did
on the playground's web host. See :mod:`wirelab.web.tinysite.pages` for what is there.
"""

from __future__ import annotations

from collections.abc import Sequence

from wirelab.lab.service import LabContext
from wirelab.web.serving import WebEndpoint, WSGIService

__all__ = ["TINYSITE_HOST", "TinySiteService"]

#: The host name the site plays.
TINYSITE_HOST = "www.example.com"


class TinySiteService(WSGIService):
    """The crawlers' test site (F69): static, script-only, form-only and login-only pages."""

    name = "tinysite"
    host = TINYSITE_HOST
    chapter = 11
    description = "the scrapers' and crawlers' test site (chapter 11)"
    app = "wirelab.web.tinysite.app:build()"
    threads = 8
    max_body = 64 * 1024

    def web_endpoints(self, lab: LabContext) -> Sequence[WebEndpoint]:
        return (WebEndpoint("http"),)
