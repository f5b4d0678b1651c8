"""The lab: real local servers for every protocol of the book, started together on loopback.

* :mod:`wirelab.lab.service` - the :class:`Service` contract every lab server follows;
* :mod:`wirelab.lab.registry` - finds the services, tour chapters and CLI groups of topics;
* :mod:`wirelab.lab.supervisor` - starts services, waits until ready, stops them cleanly;
* :mod:`wirelab.lab.state` - the state file clients read (endpoints, CA, accounts);
* :mod:`wirelab.lab.tour` - runs every chapter's steps against a lab.
"""
