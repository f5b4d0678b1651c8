"""The test site of chapter 11's scrapers and crawlers (F69): our own pages, in code.

:mod:`wirelab.web.tinysite.pages` is the authoritative manifest (every page, and how a
visitor can reach it: by plain links, only with JavaScript, only after a login, or not at all
because robots.txt forbids it); :mod:`wirelab.web.tinysite.app` is the WSGI app that serves
them; :mod:`wirelab.web.tinysite.service` serves it in the lab as ``tinysite`` on the web host.
"""
