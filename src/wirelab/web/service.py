"""Chapter 11's lab services, one import per part of the chapter.

Each part defines its service in its own package (a :class:`wirelab.web.serving.WSGIService`
subclass) and adds it here with one line, so the lab finds every chapter 11 service through
this module's ``SERVICES``.
"""

from __future__ import annotations

from wirelab.lab.service import Service
from wirelab.web.bank.service import BankService
from wirelab.web.djbank.service import DjbankService
from wirelab.web.tinysite.service import TinySiteService

__all__ = ["SERVICES"]

SERVICES: tuple[Service, ...] = (BankService(), DjbankService(), TinySiteService())
