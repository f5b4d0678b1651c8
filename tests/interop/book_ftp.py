"""A test-only peer that behaves on the wire like the book's chapter 17 programs.

Written from the programs' behaviour (py3/chapter17 of the book's repository), not their
code. Run it as ``python book_ftp.py PROGRAM HOST [ARGS...] [-p PORT]``: the book's scripts
connect to port 21 of a hard-coded host; here the host is the argument (the only change the
lab asks for) and the port is ``-p`` because the lab shifts 21 to 10021.

* ``connect.py``: prints ``Welcome: <banner>``, logs in anonymously, prints
  ``Current working directory: <pwd>``, quits.
* ``nlst.py`` / ``dir.py``: anonymous, CWD ``/pub/academic/astronomy/``, NLST (or LIST
  lines), quit, then ``N entries:`` and the sorted names (the LIST lines as they came).
* ``asciidl.py``: refuses if ``README`` exists; CWD ``/pub/linux/kernel``; ``RETR README``
  in ASCII mode, each line written with ``os.linesep`` to a text-mode file.
* ``binarydl.py``: refuses if ``patch8.gz`` exists; CWD ``/pub/linux/kernel/v1.0``;
  ``retrbinary('RETR patch8.gz')``.
* ``advbinarydl.py``: refuses if ``linux-1.0.tar.gz`` exists; ``TYPE I``; ``ntransfercmd``
  RETR; 2048-byte reads with a ``Received N of SIZE total bytes (P%)`` line (``bytes`` when
  the 150 reply had no size); ``voidresp``; quit.
* ``binaryul.py HOST USER LOCALFILE REMOTEDIR``: password from the terminal (from stdin here,
  when there is no terminal); CWD REMOTEDIR; ``storbinary`` STOR of the basename.
* ``advbinaryul.py``: the same arguments; ``TYPE I``, ``ntransfercmd`` STOR, 8 KiB blocks
  and a ``Sent N of SIZE bytes (P%)`` line (its division by the size runs only after a block
  was read, so an empty file goes up with no progress line).
* ``recursedl.py``: anonymous; walks ``/pub/linux/kernel/Historic/old-versions`` by trying
  CWD on every NLST name, printing each directory it enters; a 5xx on CWD means "not a
  directory"; no loop guard and no depth limit (downloads nothing).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from ftplib import FTP, error_perm


def _open(host: str, port: int) -> FTP:
    ftp = FTP()
    ftp.connect(host, port)
    return ftp


def connect(a: argparse.Namespace) -> None:
    ftp = _open(a.host, a.p)
    print("Welcome:", ftp.getwelcome())
    ftp.login()
    print("Current working directory:", ftp.pwd())
    ftp.quit()


def listing(a: argparse.Namespace, long: bool) -> None:
    ftp = _open(a.host, a.p)
    ftp.login()
    ftp.cwd("/pub/academic/astronomy/")
    found: list[str] = []
    if long:
        ftp.dir(found.append)
    else:
        found = ftp.nlst()
    ftp.quit()
    print(len(found), "entries:")
    for item in found if long else sorted(found):
        print(item)


def asciidl(a: argparse.Namespace) -> None:
    if os.path.exists("README"):
        raise OSError("refusing to overwrite your README file")
    ftp = _open(a.host, a.p)
    ftp.login()
    ftp.cwd("/pub/linux/kernel")
    with open("README", "w") as out:
        ftp.retrlines("RETR README", lambda line: out.write(line + os.linesep))
    ftp.quit()


def binarydl(a: argparse.Namespace) -> None:
    if os.path.exists("patch8.gz"):
        raise OSError("refusing to overwrite your patch8.gz file")
    ftp = _open(a.host, a.p)
    ftp.login()
    ftp.cwd("/pub/linux/kernel/v1.0")
    with open("patch8.gz", "wb") as out:
        ftp.retrbinary("RETR patch8.gz", out.write)
    ftp.quit()


def advbinarydl(a: argparse.Namespace) -> None:
    name = "linux-1.0.tar.gz"
    if os.path.exists(name):
        raise OSError(f"refusing to overwrite your {name} file")
    ftp = _open(a.host, a.p)
    ftp.login()
    ftp.cwd("/pub/linux/kernel/v1.0")
    ftp.voidcmd("TYPE I")
    data, size = ftp.ntransfercmd(f"RETR {name}")
    count = 0
    with open(name, "wb") as out:
        while block := data.recv(2048):
            out.write(block)
            count += len(block)
            print("\rReceived", count, end=" ")
            if size:
                print(f"of {size} total bytes ({100 * count / float(size):.1f}%)", end=" ")
            else:
                print("bytes", end=" ")
            sys.stdout.flush()
    print()
    data.close()
    ftp.voidresp()
    ftp.quit()


def _login(a: argparse.Namespace) -> FTP:
    prompt = f"Enter password for {a.username} on {a.host}: "
    password = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().strip()
    ftp = _open(a.host, a.p)
    ftp.login(a.username, password)
    ftp.cwd(a.remotedir)
    return ftp


def binaryul(a: argparse.Namespace) -> None:
    ftp = _login(a)
    with open(a.localfile, "rb") as source:
        ftp.storbinary(f"STOR {os.path.basename(a.localfile)}", source)
    ftp.quit()


def advbinaryul(a: argparse.Namespace) -> None:
    ftp = _login(a)
    ftp.voidcmd("TYPE I")
    data, _ = ftp.ntransfercmd(f"STOR {os.path.basename(a.localfile)}")
    size = os.stat(a.localfile).st_size
    sent = 0
    with open(a.localfile, "rb") as source:
        while block := source.read(8192):
            data.sendall(block)
            sent += len(block)
            print("\rSent", sent, "of", size, "bytes", f"({100 * sent / float(size):.1f}%)\r")
            sys.stdout.flush()
    print()
    data.close()
    ftp.voidresp()
    ftp.quit()


def recursedl(a: argparse.Namespace) -> None:
    def walk(ftp: FTP, path: str) -> None:
        back = ftp.pwd()
        try:
            ftp.cwd(path)
        except error_perm:
            return
        print(path)
        for name in sorted(ftp.nlst()):
            walk(ftp, path + "/" + name)
        ftp.cwd(back)

    ftp = _open(a.host, a.p)
    ftp.login()
    walk(ftp, "/pub/linux/kernel/Historic/old-versions")
    ftp.quit()


def main(argv: list[str]) -> None:
    program, rest = argv[0], argv[1:]
    parser = argparse.ArgumentParser(prog=program)
    parser.add_argument("host")
    if program in ("binaryul.py", "advbinaryul.py"):
        for name in ("username", "localfile", "remotedir"):
            parser.add_argument(name)
    parser.add_argument("-p", type=int, default=21)
    args = parser.parse_args(rest)
    runs = {
        "connect.py": connect,
        "nlst.py": lambda a: listing(a, long=False),
        "dir.py": lambda a: listing(a, long=True),
        "asciidl.py": asciidl,
        "binarydl.py": binarydl,
        "advbinarydl.py": advbinarydl,
        "binaryul.py": binaryul,
        "advbinaryul.py": advbinaryul,
        "recursedl.py": recursedl,
    }
    runs[program](args)


if __name__ == "__main__":
    main(sys.argv[1:])
