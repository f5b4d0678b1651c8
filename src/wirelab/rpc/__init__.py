"""Chapter 18: remote procedure calls (XML-RPC, JSON-RPC 2.0 and RPyC), correct and bounded.

* :mod:`wirelab.rpc.functions`: the book's remote functions, corrected (sum, quadratic roots,
  echo, lengths);
* :mod:`wirelab.rpc.xmlcodec` and :mod:`wirelab.rpc.jsoncodec`: sans-I/O dispatchers, bytes of
  a request in, bytes of an answer out;
* :mod:`wirelab.rpc.http`: the HTTP/1.1 server both run on (the project's connection server);
* :mod:`wirelab.rpc.rpyc_server`: the RPyC line counter, in service mode only;
* :mod:`wirelab.rpc.client`: clients for the three.
"""
