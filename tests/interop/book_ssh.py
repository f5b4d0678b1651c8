"""Test-only peers with the behaviour of the book's chapter 16 paramiko scripts (not their code).

``python book_ssh.py PROGRAM HOST PORT USER KEYFILE KNOWN_HOSTS [ARGS...]``: ``ssh_simple``,
``ssh_commands``, ``ssh_threads`` and ``sftp_get`` as the book runs them, with three changes a
reader makes to point them at the lab: the port, the key file (the book relied on the default
keys after ``ssh-copy-id``), and the lab's ``known_hosts`` loaded first (the book accepts any
key for an unknown host; a host in the file must present its pinned key). ``ssh_threads``
runs two ``tick`` commands: the lab's shell has no ``;``, so the book's
``echo One;sleep 2;echo Two`` is written as one command that prints lines over time.
"""

from __future__ import annotations

import functools
import sys
import threading

import paramiko


class AllowAnything(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):  # type: ignore[no-untyped-def]
        return


def _client(host: str, port: int, user: str, keyfile: str, known_hosts: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(AllowAnything())
    client.connect(
        host,
        port=port,
        username=user,
        key_filename=keyfile,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def ssh_simple(client: paramiko.SSHClient, args: list[str]) -> None:
    channel = client.invoke_shell()
    stdin = channel.makefile("wb")
    stdout = channel.makefile("rb")
    stdin.write(b"echo Hello, world\rexit\r")
    output = stdout.read()
    client.close()
    print(repr(output))


def ssh_commands(client: paramiko.SSHClient, args: list[str]) -> None:
    for command in ('echo "Hello, world!"', "uname", "uptime"):
        _stdin, stdout, _stderr = client.exec_command(command)
        _stdin.close()
        print(repr(stdout.read()))
        stdout.close()
        _stderr.close()
    client.close()


def ssh_threads(client: paramiko.SSHClient, args: list[str]) -> None:
    def read_until_eof(fileobj):  # type: ignore[no-untyped-def]
        line = fileobj.readline()
        while line:
            print(line.strip(), flush=True)
            line = fileobj.readline()

    out1 = client.exec_command("tick 0.4 One Two Three")[1]
    out2 = client.exec_command("tick 0.7 A B C")[1]
    threads = [threading.Thread(target=read_until_eof, args=(o,)) for o in (out1, out2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()


def sftp_get(client: paramiko.SSHClient, args: list[str]) -> None:
    def print_status(filename, bytes_so_far, bytes_total):  # type: ignore[no-untyped-def]
        percent = 100.0 * bytes_so_far / bytes_total
        print(f"Transfer of {filename!r} is at {bytes_so_far}/{bytes_total} bytes ({percent:.1f}%)")

    sftp = client.open_sftp()
    for filename in args:
        if filename.endswith(".copy"):
            continue
        sftp.get(filename, filename + ".copy", callback=functools.partial(print_status, filename))
    client.close()


if __name__ == "__main__":
    program, host, port, user, keyfile, known_hosts, *rest = sys.argv[1:]
    programs = {
        "ssh_simple": ssh_simple,
        "ssh_commands": ssh_commands,
        "ssh_threads": ssh_threads,
        "sftp_get": sftp_get,
    }
    programs[program](_client(host, int(port), user, keyfile, known_hosts), rest)
