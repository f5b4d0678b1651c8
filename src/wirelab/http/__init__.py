"""Chapters 9 and 10: HTTP clients (requests, urllib, h11 on a bare socket) and WSGI servers.

* :mod:`wirelab.http.client`: ``get`` on requests with an explicit TLS context, redirects,
  status errors, Basic auth, cookies, connection reuse, the framing shown;
* :mod:`wirelab.http.transport`: the connections under it (recorded, explicit trust, lab names);
* :mod:`wirelab.http.raw`: HTTP/1.1 over a plain or TLS socket with h11, every byte kept;
* :mod:`wirelab.http.apps`: the WSGI apps of chapter 10 and the wire logger;
* :mod:`wirelab.http.server`: gunicorn, waitress and wsgiref serving them;
* :mod:`wirelab.http.worker`: ``http serve``'s gunicorn worker (gthread, threads that poll);
* :mod:`wirelab.http.service`: the lab's web host, httpbin under gunicorn.
"""
