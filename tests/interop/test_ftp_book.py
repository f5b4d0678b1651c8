"""Chapter 17 with the book's own programs against the lab FTP host.

The peers (``book_ftp.py``) behave like the book's scripts, with only the host name (and
the lab's shifted port) changed: the lab's tree has the paths they ask for, its 150 replies
carry the size as vsftpd's did, its accounts take the book's uploads. Where the book has a
bug, the test shows it meeting our side: ``recursedl.py`` walks into the symlink loop and
is stopped by the server's path limit (a 550 it reads as "not a directory"). An empty file
goes up both ways (the book's ``advbinaryul.py`` never enters its progress division then).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import run_wirelab
from wirelab.ftp.seed import OLD_VERSIONS, readme_text
from wirelab.lab.state import LabState, ServiceView

PEER = Path(__file__).resolve().parent / "book_ftp.py"


def book(
    program: str, *args: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-u", str(PEER), program, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _where(lab_ftp: ServiceView) -> tuple[str, str]:
    ep = lab_ftp.endpoint("ftp")
    return ep.address, str(ep.port)


def _public(state: LabState) -> Path:
    return Path(state.directory) / "ftp" / "anonymous"


def test_connect_nlst_and_dir(lab_ftp: ServiceView, tmp_path: Path) -> None:
    host, port = _where(lab_ftp)
    done = book("connect.py", host, "-p", port, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Welcome: 220 wirelab FTP server (ftp.example.com) ready.",
        "Current working directory: /",
    ]
    names = book("nlst.py", host, "-p", port, cwd=tmp_path)
    assert names.returncode == 0, names.stderr
    lines = names.stdout.splitlines()
    assert lines[0] == "7 entries:" and "catalogs" in lines and "README" in lines
    long = book("dir.py", host, "-p", port, cwd=tmp_path)
    assert long.returncode == 0 and long.stdout.startswith("7 entries:\n")
    assert any(line.startswith("drwx") for line in long.stdout.splitlines())


def test_downloads_ascii_binary_and_low_level(
    lab_ftp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    host, port = _where(lab_ftp)
    public = _public(wirelab_lab) / "pub/linux/kernel"
    assert book("asciidl.py", host, "-p", port, cwd=tmp_path).returncode == 0
    assert (tmp_path / "README").read_text() == readme_text()
    again = book("asciidl.py", host, "-p", port, cwd=tmp_path)
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    assert book("binarydl.py", host, "-p", port, cwd=tmp_path).returncode == 0
    assert (tmp_path / "patch8.gz").read_bytes() == (public / "v1.0/patch8.gz").read_bytes()
    adv = book("advbinarydl.py", host, "-p", port, cwd=tmp_path)
    assert adv.returncode == 0, adv.stderr
    size = (public / "v1.0/linux-1.0.tar.gz").stat().st_size
    assert f"Received {size} of {size} total bytes (100.0%)" in adv.stdout  # size from 150
    assert (tmp_path / "linux-1.0.tar.gz").stat().st_size == size


def test_uploads_as_the_book_account(
    lab_ftp: ServiceView, wirelab_lab: LabState, tmp_path: Path
) -> None:
    host, port = _where(lab_ftp)
    account = wirelab_lab.account
    home = Path(wirelab_lab.directory) / "ftp" / "home" / account.user
    (home / "book").mkdir(exist_ok=True)
    simple = tmp_path / "book-simple.txt"
    simple.write_text("binaryul\n")
    done = book(
        "binaryul.py",
        host,
        account.user,
        str(simple),
        "/book",
        "-p",
        port,
        cwd=tmp_path,
        stdin=account.password + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert (home / "book/book-simple.txt").read_text() == "binaryul\n"
    chunked = tmp_path / "book-chunked.bin"
    chunked.write_bytes(b"z" * 20000)
    done = book(
        "advbinaryul.py",
        host,
        account.user,
        str(chunked),
        "/book",
        "-p",
        port,
        cwd=tmp_path,
        stdin=account.password + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Sent 20000 of 20000 bytes (100.0%)" in done.stdout
    assert (home / "book/book-chunked.bin").read_bytes() == chunked.read_bytes()


def test_an_empty_upload_the_books_way_and_ours(
    lab_ftp: ServiceView, wirelab_lab: LabState, wirelab_env: dict[str, str], tmp_path: Path
) -> None:
    host, port = _where(lab_ftp)
    account = wirelab_lab.account
    empty = tmp_path / "book-empty.bin"
    empty.write_bytes(b"")
    (Path(wirelab_lab.directory) / "ftp" / "home" / account.user / "book").mkdir(exist_ok=True)
    done = book(
        "advbinaryul.py",
        host,
        account.user,
        str(empty),
        "/book",
        "-p",
        port,
        cwd=tmp_path,
        stdin=account.password + "\n",
    )
    # BOOK.md says this divides by zero; it does not: the loop never runs for an empty file
    assert done.returncode == 0, done.stderr
    assert done.stdout == "\n"
    home = Path(wirelab_lab.directory) / "ftp" / "home" / account.user
    assert (home / "book/book-empty.bin").read_bytes() == b""
    ours = run_wirelab("ftp", "put", str(empty), "/book/ours-empty.bin", "--force", env=wirelab_env)
    assert ours.returncode == 0, ours.stderr


def test_recursedl_walks_the_tree_and_the_path_limit_ends_the_loop(
    lab_ftp: ServiceView, tmp_path: Path
) -> None:
    host, port = _where(lab_ftp)
    done = book("recursedl.py", host, "-p", port, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == OLD_VERSIONS
    assert f"{OLD_VERSIONS}/linux-0.12/patches" in lines
    looped = [line for line in lines if "/loop" in line]
    assert 10 < len(looped) < 250  # into the loop, until the 1024-character limit
