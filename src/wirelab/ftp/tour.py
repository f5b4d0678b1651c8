"""Chapter 17 in the tour: listings, ASCII and binary downloads, uploads, mirrors, FTPS."""

from __future__ import annotations

import hashlib
import ssl
import tempfile
from pathlib import Path

from wirelab.ftp import client as ftp
from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    17,
    "FTP",
    "Two connections per transfer, ASCII versus binary, and why FTP needs TLS to be safe.",
)


def _target(ctx: TourContext, **kw: object) -> ftp.FTPTarget:
    ep = ctx.lab.endpoint("ftp", "ftps" if kw.get("tls") == "implicit" else "ftp")
    return ftp.FTPTarget(ep.address, ep.port, timeout=15.0, **kw)  # type: ignore[arg-type]


@CHAPTER.step("anonymous login: the banner, the working directory, NLST and LIST")
def _listing(ctx: TourContext) -> None:
    target = _target(ctx)
    with ftp.open_session(target) as session:
        ctx.say(f"Welcome: {session.getwelcome()}")
        ctx.say(f"Current working directory: {session.pwd()}")
        names = sorted(ftp.list_names(session, "/pub/linux/kernel/v1.0"))
        lines = ftp.list_long(session, "/pub/linux/kernel/v1.0")
    ctx.say(f"NLST /pub/linux/kernel/v1.0: {names}")
    ctx.say(f"LIST gives long lines: {lines[0]}")
    ctx.check(names == ["linux-1.0.tar.gz", "patch8.gz"], f"unexpected names {names}")


@CHAPTER.step("ASCII mode turns line ends into CR LF on the wire; binary mode keeps bytes")
def _ascii_binary(ctx: TourContext) -> None:
    with tempfile.TemporaryDirectory() as tmp, ftp.open_session(_target(ctx)) as session:
        readme = ftp.download_ascii(session, "/pub/linux/kernel/README", Path(tmp) / "README")
        patch = ftp.download(session, "/pub/linux/kernel/v1.0/patch8.gz", Path(tmp) / "p.gz")
        text = (Path(tmp) / "README").read_bytes()
        gz = (Path(tmp) / "p.gz").read_bytes()
    ctx.say(f"README in ASCII mode: {readme.bytes} characters, written with local line ends")
    ctx.say(f"patch8.gz in binary mode: {patch.bytes} bytes, announced as {patch.expected}")
    ctx.check(b"\r" not in text and text.startswith(b"Linux kernel"), "README lines mangled")
    ctx.check(gz[:2] == b"\x1f\x8b" and patch.bytes == patch.expected, "patch8.gz damaged")


@CHAPTER.step("an upload over explicit FTPS (AUTH TLS, PROT P), verified with the lab CA")
def _upload(ctx: TourContext) -> None:
    account = ctx.lab.account
    target = _target(
        ctx,
        user=account.user,
        password=account.password,
        tls="explicit",
        context=ctx.ssl_context(),
    )
    data = hashlib.sha256(b"tour").digest() * 1000
    with tempfile.TemporaryDirectory() as tmp, ftp.open_session(target) as session:
        source = Path(tmp) / "tour-upload.bin"
        source.write_bytes(data)
        sent = ftp.upload(session, source, force=True)
        back = ftp.download(session, "tour-upload.bin", Path(tmp) / "back.bin")
        same = (Path(tmp) / "back.bin").read_bytes() == data
        sock = session.sock
        cipher = sock.version() if isinstance(sock, ssl.SSLSocket) else None
    ctx.say(f"sent {sent.bytes} bytes as {account.user}, read {back.bytes} back; TLS {cipher}")
    ctx.check(same, "the uploaded file came back different")


@CHAPTER.step("a mirror down and up survives the symlink loop the book's walk falls into")
def _mirror(ctx: TourContext) -> None:
    account = ctx.lab.account
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "old-versions"
        with ftp.open_session(_target(ctx)) as session:
            down = ftp.mirror_down(session, "/pub/linux/kernel/Historic/old-versions", local)
        target = _target(ctx, user=account.user, password=account.password)
        with ftp.open_session(target) as session:
            up = ftp.mirror_up(session, local, "/tour-mirror", force=True)
    ctx.say(f"down: {down.files} files in {down.directories} directories; skipped {down.skipped}")
    ctx.say(f"up: {up.files} files, {up.bytes} bytes into /tour-mirror of {account.user}")
    ctx.check(down.files == up.files > 0 and down.skipped, "the mirror lost files")


CHAPTERS = (CHAPTER,)
