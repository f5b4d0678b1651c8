"""Chapter 7, server architectures: one tiny protocol (Zen Q&A) served ten ways.

* :mod:`wirelab.zen._core` - the protocol, sans-I/O (questions in, answers out, bounded);
* :mod:`wirelab.zen.archs` - the table of architectures and :func:`start_server`;
* :mod:`wirelab.zen.blocking`, :mod:`~wirelab.zen.evloop`, :mod:`~wirelab.zen.aio`,
  :mod:`~wirelab.zen.prefork`, :mod:`~wirelab.zen.inetd` - the servers;
* :mod:`wirelab.zen.client` - the client (pipelining, error injection);
* :mod:`wirelab.zen.bench` - the benchmark against a C reference server.
"""
