"""The lab FTP host's files: the trees the book's chapter 17 scripts walk, made here.

The book's download scripts went to ``ftp.kernel.org`` and ``ftp.ibiblio.org``; both are gone
(kernel.org shut its FTP service down in 2017). :func:`build_public_tree` writes a tree with
the same paths, deterministically (the same bytes on every machine and every run):

* ``/pub/academic/astronomy/``: a handful of entries for ``nlst.py`` and ``dir.py``;
* ``/pub/linux/kernel/README``: text, stored with ``\\n`` line ends (``asciidl.py``);
* ``/pub/linux/kernel/v1.0/patch8.gz`` (small) and ``linux-1.0.tar.gz`` (a few MiB of
  incompressible data, for the progress bar of ``advbinarydl.py``);
* ``/pub/linux/kernel/Historic/old-versions/``: nested directories for ``recursedl.py``, and
  ``tytso/loop``, a symbolic link to its own directory: the loop the book's walk never ends
  on by itself (the server's path-length limit ends it).

The tree is rebuilt only when :data:`TREE_VERSION` or the tarball size changes.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import tarfile
from pathlib import Path

__all__ = [
    "DEFAULT_TARBALL_BYTES",
    "KERNEL_DIR",
    "LOOP_LINK",
    "OLD_VERSIONS",
    "TREE_VERSION",
    "build_public_tree",
    "readme_text",
]

#: Bump when the tree's contents change, so an old lab directory is rebuilt.
TREE_VERSION = 1

#: The size of the generated data inside ``linux-1.0.tar.gz`` (the tarball is a little larger).
DEFAULT_TARBALL_BYTES = 4 << 20

#: Where the book's kernel scripts ``cwd`` to.
KERNEL_DIR = "/pub/linux/kernel"
#: What ``recursedl.py`` walks.
OLD_VERSIONS = "/pub/linux/kernel/Historic/old-versions"
#: The symbolic link to its own directory inside :data:`OLD_VERSIONS`.
LOOP_LINK = OLD_VERSIONS + "/tytso/loop"

#: 14 March 1994, Linux 1.0: every file's modification time, so listings do not change.
_EPOCH = 763603200

_ASTRONOMY = {
    "README": "Astronomy software and data, mirrored for the wirelab FTP lab.\n",
    "INDEX": "A list of the files in this directory.\n",
    "xephem-3.7.tar.gz.txt": "XEphem: interactive astronomical ephemeris (placeholder).\n",
    "starcharts.txt": "Notes on printing star charts.\n",
}
_ASTRONOMY_DIRS = ("catalogs", "ephemerides", "images")

_OLD_VERSIONS: dict[str, dict[str, str]] = {
    "linux-0.01": {"RELNOTES-0.01": "Notes for linux release 0.01\n"},
    "linux-0.10": {"RELNOTES-0.10": "Notes for linux release 0.10\n"},
    "linux-0.11": {"RELNOTES-0.11": "Notes for linux release 0.11\n"},
    "linux-0.12/patches": {"patch1": "A patch to 0.12.\n"},
    "tytso": {"README": "Ted Ts'o's copies of the early releases.\n"},
}


def readme_text() -> str:
    """The text of ``/pub/linux/kernel/README`` (``\\n`` line ends, as on a Unix server)."""
    lines = [
        "Linux kernel release 1.0",
        "",
        "These are the release notes for linux version 1.0. Read them carefully,",
        "as they tell you what this is all about, explain how to install the",
        "kernel, and what to do if something goes wrong.",
        "",
        "This README stands in for the one the book downloaded from ftp.kernel.org,",
        "whose FTP service was shut down on 1 March 2017. In ASCII mode (TYPE A) the",
        "server sends every line ending as CR LF; ftplib's retrlines() strips it.",
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (_EPOCH, _EPOCH))


def _gzip(data: bytes, name: str) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=_EPOCH, compresslevel=6) as gz:
        gz.write(data)
    return out.getvalue()


def _patch8() -> bytes:
    rng = random.Random(8)
    lines = ["diff -u --recursive --new-file v1.0/linux/Makefile linux/Makefile"]
    for number in range(400):
        lines.append(f"@@ -{number * 7},6 +{number * 7},6 @@")
        lines.append(f"-old line {number} {rng.getrandbits(32):08x}")
        lines.append(f"+new line {number} {rng.getrandbits(32):08x}")
    return _gzip(("\n".join(lines) + "\n").encode(), "patch8")


def _tarball(size: int) -> bytes:
    """A gzip'd tar of ``size`` bytes of seeded random data (incompressible: the tarball's
    size is about ``size``)."""
    rng = random.Random(1994)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        left, index = size, 0
        while left > 0:
            chunk = min(left, 1 << 20)
            info = tarfile.TarInfo(f"linux/blob{index:02d}.bin")
            info.size, info.mtime, info.mode = chunk, _EPOCH, 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(rng.randbytes(chunk)))
            left -= chunk
            index += 1
    return _gzip(raw.getvalue(), "linux-1.0.tar")


def build_public_tree(root: Path, *, tarball_bytes: int = DEFAULT_TARBALL_BYTES) -> Path:
    """Write the anonymous tree under ``root`` (unless it is already there) and return root.

    The tree is built in a sibling directory and renamed into place, so a half-written tree
    is never served. Directories are left ``0755`` and files ``0644``; the server itself
    refuses anonymous writes.
    """
    marker = root.with_name(root.name + ".stamp")  # beside the tree: not served
    stamp = f"{TREE_VERSION} {tarball_bytes}\n"
    if marker.is_file() and marker.read_text() == stamp:
        return root
    building = root.with_name(root.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    astronomy = building / "pub/academic/astronomy"
    for name, text in _ASTRONOMY.items():
        _write(astronomy / name, text.encode())
    for name in _ASTRONOMY_DIRS:
        _write(astronomy / name / "README", f"{name}\n".encode())
    kernel = building / KERNEL_DIR.lstrip("/")
    _write(kernel / "README", readme_text().encode())
    _write(kernel / "v1.0/patch8.gz", _patch8())
    _write(kernel / "v1.0/linux-1.0.tar.gz", _tarball(tarball_bytes))
    old = building / OLD_VERSIONS.lstrip("/")
    for directory, files in _OLD_VERSIONS.items():
        for name, text in files.items():
            _write(old / directory / name, text.encode())
    (building / LOOP_LINK.lstrip("/")).symlink_to(".")
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    marker.write_text(stamp)
    return root
