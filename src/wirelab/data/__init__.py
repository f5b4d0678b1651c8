"""Chapter 5, network data and framing: encodings, byte order, and two ways to frame a stream.

* :mod:`wirelab.data.encodings` - text to bytes and back, and the error handlers (F21);
* :mod:`wirelab.data.packing` - ``struct`` and byte order (F22);
* :mod:`wirelab.data.stream` - framing by end-of-file: server and client (F23);
* :mod:`wirelab.data.blocks` - length-prefixed blocks: server and client (F24);
* :mod:`wirelab.data._core` - the servers' summary replies, sans-I/O.
"""
