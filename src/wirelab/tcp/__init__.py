"""Chapter 3, TCP: exact-length messages, socket names, half-close, and the buffer deadlock.

* :mod:`wirelab.tcp._core` - the sixteen exchange and the upper echo, sans-I/O;
* :mod:`wirelab.tcp.client` - the sixteen client;
* :mod:`wirelab.tcp.deadlock` - the deadlock client: naive, concurrent and half-close modes;
* :mod:`wirelab.tcp.server` - the servers; :mod:`wirelab.net.server` - their connection
  handling, shared with every TCP server.
"""
