"""Chapter 2, UDP: request/reply with timeouts and backoff, broadcast, and the MTU probe.

* :mod:`wirelab.udp._core` - the request/reply protocol, sans-I/O;
* :mod:`wirelab.udp.client` - the client (``connect()`` filtering, backoff, request IDs),
  broadcast sender and listener, and the path-MTU probe;
* :mod:`wirelab.udp.server` - the server (with a simulated drop rate), and its lab service.
"""
