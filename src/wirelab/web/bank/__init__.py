"""Chapter 11's payments app (Flask, SQLite): deliberately insecure, hardened, and attacked.

* :mod:`.store`: the payments store (the book's ``bank.py``): SQLite, parameterised queries,
  seeded with the book's three payments, bounded.
* :mod:`.insecure`: the book's ``app_insecure.py``: identity in a plain cookie, messages in the
  query string, no escaping. Loopback only; it says so on every page.
* :mod:`.hardened`: the book's ``app_improved.py`` and more: a signed session, a per-session
  CSRF token, flash messages, autoescaping, Secure/HttpOnly/SameSite cookies, a strict
  Content-Security-Policy, strict validation; served on HTTPS by the lab.
* :mod:`.attacker`: the third-party pages that attack them (CSRF, XSS), with the right field
  names, and a log of what the attacks brought home.
* :mod:`.client`: a requests-based client of either app; :mod:`.proofs`: the attacks run in a
  real browser, each ending in a verdict.
* :mod:`.service`: the lab service ``bank`` (endpoints ``insecure``, ``hardened``, ``attacker``).
"""
