"""Chapter 5 in the tour: encodings, byte order, and two ways to frame a stream."""

from __future__ import annotations

import socket
import struct

from wirelab.data.blocks import BOOK_BLOCKS, send_blocks
from wirelab.data.encodings import decode_everywhere, encode_everywhere
from wirelab.data.packing import pack_lesson
from wirelab.data.pickling import code_on_load, self_delimiting
from wirelab.data.stream import ZEN, send_stream
from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    5,
    "Network data and framing",
    "Bytes carry text and numbers only by convention, and a stream needs framing to carry "
    "messages.",
)


@CHAPTER.step("one word, ten encodings: different bytes, and some cannot say it at all")
def _encodings(ctx: TourContext) -> None:
    got = {o.codec: o for o in encode_everywhere("Namárië!")}
    for codec in ("latin-1", "greek", "cp500", "utf-16", "utf-8"):
        o = got[codec]
        shown = f"{o.data.hex(' ')} ({len(o.data)} bytes)" if o.data is not None else o.error
        ctx.say(f"{codec:<8} {shown}")
    utf8 = got["utf-8"].data
    ctx.check(utf8 is not None and len(utf8) == 10, "UTF-8 should take 10 bytes for 8 characters")
    ctx.check(got["greek"].data is None, "the Greek code page has no 'á'")


@CHAPTER.step("one byte, many characters; strict, replace and ignore")
def _decodings(ctx: TourContext) -> None:
    got = {(o.codec, o.handler): o for o in decode_everywhere(b"ghi\xe7jkl")}
    for codec in ("latin-1", "greek", "hebrew", "cp500"):
        ctx.say(f"b'ghi\\xe7jkl' as {codec:<8} {got[codec, 'strict'].text!r}")
    for handler in ("strict", "replace", "ignore"):
        o = got["ascii", handler]
        ctx.say(
            f"as ascii, {handler:<8} {o.text!r}"
            if o.text is not None
            else f"as ascii, {handler:<8} {o.error}"
        )
    ctx.check(got["ascii", "strict"].error is not None, "strict ASCII accepted byte e7")
    ctx.check(got["ascii", "ignore"].text == "ghijkl", "ignore should drop the byte silently")


@CHAPTER.step("byte order: 4253 big-endian and little-endian")
def _struct(ctx: TourContext) -> None:
    lesson = pack_lesson(4253)
    for packed in lesson.packed[:3]:
        assert packed.data is not None
        ctx.say(
            f"struct.pack({packed.format!r}, 4253) = {packed.data.hex(' ')}  ({packed.meaning})"
        )
    ctx.say(f"the big-endian bytes read as little-endian: {lesson.misread}")
    ctx.check(lesson.misread == -1659895808, f"misread as {lesson.misread}")


@CHAPTER.step("pickle frames itself (STOP ends each object), and loading it runs code")
def _pickle(ctx: TourContext) -> None:
    stream, frames, stopped = self_delimiting()
    for frame in frames:
        ctx.say(
            f"pickle.load at offset {frame.offset:>2} read {frame.size} bytes up to "
            f"{frame.last_byte!r}: {frame.value!r}"
        )
    ctx.say(f"the trailing {stream[stopped:]!r} was never read: each load stops at STOP")
    ctx.check(all(f.last_byte == b"." for f in frames), "a load did not stop at a STOP opcode")
    hostile = code_on_load()
    ctx.say(f"but {' '.join(hostile.opcodes[:3])} ... REDUCE called {hostile.called} on load")
    ctx.say("so a peer's pickle could run anything: wirelab never loads one from the wire")
    ctx.check(hostile.result == len("Beautiful"), "loading did not call the named function")


@CHAPTER.step("framing by end-of-file: send, shutdown(SHUT_WR), read the summary")
def _stream(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("blocks", "stream").sockaddr
    report = send_stream(host, port, ZEN)
    ctx.say(f"sent {report.sent} bytes, then half-closed: the server saw end-of-file")
    ctx.check(report.summary is not None and report.verified, "the lab sent no summary")
    assert report.summary is not None
    ctx.say(
        f"it answered: received {report.summary.size} bytes, sha256 "
        f"{report.summary.sha256[:16]}... (matches)"
    )


@CHAPTER.step("length-prefixed blocks: many messages on one connection")
def _blocks(ctx: TourContext) -> None:
    host, port = ctx.lab.endpoint("blocks", "blocks").sockaddr
    report = send_blocks(host, port, BOOK_BLOCKS)
    for block in BOOK_BLOCKS:
        ctx.say(f"header {struct.pack('!I', len(block)).hex(' ')} then {block!r}")
    ctx.say("header 00 00 00 00: the empty block ends the stream")
    ctx.check(report.summary is not None and report.verified, "the lab sent no summary")
    assert report.summary is not None
    ctx.say(f"the server counted {report.summary.blocks} blocks, {report.summary.size} bytes")


@CHAPTER.step("a peer announcing a 4 GiB block is refused unread; others are still served")
def _huge(ctx: TourContext) -> None:
    address = ctx.lab.endpoint("blocks", "blocks").sockaddr
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"\xff\xff\xff\xff" + b"and then some")
        reply = b""
        while len(reply) < 4 or len(reply) < 4 + struct.unpack("!I", reply[:4])[0]:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    text = reply[4:].decode("ascii", "replace").strip()
    ctx.say("sent the header ff ff ff ff (4,294,967,295 bytes announced)")
    ctx.say(f"the server answered with one block: {text!r}")
    ctx.check(text.startswith("error: "), f"unexpected answer {text!r}")
    report = send_blocks(*address, [b"still there?"])
    ctx.check(report.verified, "the next client got no summary")
    ctx.say(f"the next client was served: 1 block, {report.size} bytes, summary verified")


@CHAPTER.step("a peer closing in the middle of a block is broken, not a short message")
def _mid_frame(ctx: TourContext) -> None:
    address = ctx.lab.endpoint("blocks", "blocks").sockaddr
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(struct.pack("!I", 100) + b"only 20 of 100 bytes")
    report = send_blocks(*address, [b"next"])
    ctx.say(
        "one client announced 100 bytes, sent 20 and closed: the server logged it and "
        "dropped that connection"
    )
    ctx.check(report.verified, "the next client was not served")
    ctx.say("the next client was served: 1 block, summary verified")


CHAPTERS = (CHAPTER,)
