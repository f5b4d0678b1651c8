"""The lab's TLS service (chapter 6): the greeting, client-certificate auth, broken certificates.

Host name: ``localhost`` (the book's chapter 6 demos ran there too), with ``www.example.com``
on the same certificate. Every endpoint binds loopback:

* ``greeting`` (11060): a lab-CA certificate; says ``Simple is better than complex.``;
* ``clientauth`` (11061): requires a client certificate from the lab CA, and greets the
  client by its certificate's common name. The lab writes one for users to
  ``<state dir>/tls/client.pem`` and ``client-key.pem``;
* ``expired``, ``wronghost``, ``selfsigned``, ``untrusted``, ``weakkey`` (11062-11066): one
  defect each (:mod:`wirelab.tls.badcerts`); a verifying client must refuse every one.

Blocking-free: all of it runs on the lab's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from wirelab.config import private_dir
from wirelab.lab.service import BoundEndpoint, LabContext, Service, Started
from wirelab.net.addresses import listen_tcp
from wirelab.net.server import ConnectionServer
from wirelab.net.tlsctx import server_context
from wirelab.tls.badcerts import LESSONS, issue_lesson, lesson_context
from wirelab.tls.server import GreetingServer, start_greeting_server

__all__ = [
    "CLIENT_CERT",
    "CLIENT_KEY",
    "HOSTNAMES",
    "SERVICES",
    "TLSService",
    "client_cert_paths",
]

log = logging.getLogger(__name__)

#: The names on the lab's good TLS certificate; the first is the service's host name.
HOSTNAMES = ("localhost", "www.example.com")

#: The client certificate the lab writes for users, relative to the lab's state directory.
CLIENT_CERT = Path("tls") / "client.pem"
CLIENT_KEY = Path("tls") / "client-key.pem"

#: The common name on the users' client certificate.
CLIENT_NAME = "brandon"


def client_cert_paths(state_dir: Path | str) -> tuple[Path, Path]:
    """(certificate, key) of the lab's client certificate under ``state_dir``."""
    return Path(state_dir) / CLIENT_CERT, Path(state_dir) / CLIENT_KEY


class TLSService(Service):
    """Seven TLS endpoints: the greeting, client auth, and five broken certificates."""

    name = "tls"
    host = HOSTNAMES[0]
    chapter = 6
    description = "TLS greeting, client-cert auth, and broken-certificate lessons (chapter 6)"

    async def serve(self, lab: LabContext, started: Started) -> None:
        ca = lab.ca
        directory = private_dir(lab.state_dir / "tls")  # keys inside: 0700, as the rest
        cert, key = ca.server_cert_for(list(HOSTNAMES), lab.state_dir / "ca")
        client_cert, _client_key = client_cert_paths(lab.state_dir)
        # Issued afresh at every start, so it always matches the lab CA in use.
        issued = ca.issue(
            [f"{CLIENT_NAME}.example.com"], ip_addresses=(), client=True, common_name=CLIENT_NAME
        )
        issued.write(directory, client_cert.name.removesuffix(".pem"))
        servers: list[tuple[str, GreetingServer]] = [
            ("greeting", GreetingServer(server_context(cert, key), name="tls.greeting")),
            (
                "clientauth",
                GreetingServer(
                    server_context(cert, key, client_cafile=ca.cert_path, require_client_cert=True),
                    greet_client=True,
                    name="tls.clientauth",
                ),
            ),
        ]
        lessons = private_dir(directory / "lessons")
        for lesson in LESSONS:
            lcert, lkey = await asyncio.to_thread(
                issue_lesson, lesson.endpoint, ca, lessons, list(HOSTNAMES)
            )
            ctx = lesson_context(lesson.endpoint, lcert, lkey)
            if ctx is not None:
                servers.append(
                    (lesson.endpoint, GreetingServer(ctx, name=f"tls.{lesson.endpoint}"))
                )
        socks: list[socket.socket] = []
        running: list[ConnectionServer] = []
        try:
            endpoints: list[BoundEndpoint] = []
            for endpoint, _ in servers:
                sock = listen_tcp(lab.bind_host, lab.port("tls", endpoint))
                socks.append(sock)
                endpoints.append(lab.endpoint(self, endpoint, sock, tls=True))
            for (_, server), sock in zip(servers, socks, strict=True):
                running.append(await start_greeting_server(sock, server))
            started(endpoints)
            await asyncio.Event().wait()
        finally:
            for srv in running:
                await srv.aclose()
            for sock in socks:
                sock.close()


SERVICES = (TLSService(),)
