"""wirelab: the programs of *Foundations of Python Network Programming* as maintained software.

A library (``wirelab.<topic>``), one CLI (``wirelab <topic> <verb>``), a lab of real local
servers (``wirelab lab up``), a tour that runs the whole book against the lab
(``wirelab tour``), and pytest fixtures for every lab server.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
