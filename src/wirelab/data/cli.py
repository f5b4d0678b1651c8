"""``wirelab data|stream|blocks ...`` (chapter 5): encodings, byte order, pickle, two framings."""

from __future__ import annotations

from typing import Annotated

import typer

from wirelab.cli.common import (
    ClientHostArgument,
    JsonOption,
    PortOption,
    ServeHostArgument,
    TimeoutOption,
    console,
    lab_target,
    print_json,
    run_server,
)
from wirelab.config import LOOPBACK, default_port
from wirelab.net.addresses import parse_port
from wirelab.net.limits import DEFAULT_MAX_MESSAGE, DEFAULT_TIMEOUT

__all__ = ["apps", "blocks_app", "data_app", "stream_app"]

data_app = typer.Typer(
    name="data",
    help="Chapter 5: text encodings and byte order, the bytes behind network data.",
    no_args_is_help=True,
)
stream_app = typer.Typer(
    name="stream",
    help="Chapter 5: framing by end-of-file (send, half-close, read the summary).",
    no_args_is_help=True,
)
blocks_app = typer.Typer(
    name="blocks",
    help="Chapter 5: length-prefixed blocks (4-byte big-endian length, empty block ends).",
    no_args_is_help=True,
)
apps = [data_app, stream_app, blocks_app]

MessageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--message",
        "-m",
        help="Text to send (repeat for several blocks). Default: the book's three lines of "
        "the Zen.",
        show_default=False,
    ),
]
MaxSizeOption = Annotated[
    int, typer.Option("--max-size", min=0, help="Largest message (stream) or block accepted.")
]


def _out(text: str) -> None:
    console.print(text, markup=False)


# -- wirelab data ------------------------------------------------------------------------------


@data_app.command()
def encodings(
    text: Annotated[str | None, typer.Argument(help="Text to encode. Default: 'Namárië!'.")] = None,
    data_hex: Annotated[
        str | None,
        typer.Option("--bytes", help="Hex bytes to decode. Default: 67 68 69 e7 6a 6b 6c."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show one text in ten encodings, and one set of bytes read by several."""
    from wirelab.data import encodings as enc

    word = enc.DEFAULT_TEXT if text is None else text
    try:
        mystery = enc.DEFAULT_BYTES if data_hex is None else bytes.fromhex(data_hex)
    except ValueError:
        raise typer.BadParameter("give hex digits, e.g. '67 68 e7'", param_hint="--bytes") from None
    encoded = enc.encode_everywhere(word)
    decoded = enc.decode_everywhere(mystery)
    handlers = [enc.try_encode(word, "ascii", handler) for handler in enc.HANDLERS]
    if json_output:
        print_json(
            {
                "text": word,
                "characters": len(word),
                "encoded": [o.to_json() for o in encoded],
                "bytes": mystery.hex(" "),
                "decoded": [o.to_json() for o in decoded],
                "ascii_encode_handlers": [o.to_json() for o in handlers],
            }
        )
        return
    _out(f"{word!r} is {len(word)} characters. Encoded (strict):")
    for o in encoded:
        shown = f"{o.data.hex(' ')}  ({len(o.data)} bytes)" if o.data is not None else o.error
        _out(f"  {o.codec:<11} {shown}")
    _out(f"The bytes {mystery.hex(' ')} read by each codec:")
    for o in decoded:
        name = o.codec if o.handler == "strict" else ""
        label = f"{name:<11} {o.handler:<8}" if o.codec == "ascii" else f"{name:<20}"
        _out(f"  {label} {o.text!r}" if o.text is not None else f"  {label} {o.error}")
    _out(f"{word!r} encoded to ascii with each error handler:")
    for o in handlers:
        _out(
            f"  {o.handler:<8} {o.data!r}" if o.data is not None else f"  {o.handler:<8} {o.error}"
        )


@data_app.command("struct")
def struct_(
    number: Annotated[int, typer.Argument(help="Integer to pack.")] = 4253,
    json_output: JsonOption = False,
) -> None:
    """Pack a number big- and little-endian with struct, as the blocks header does."""
    from wirelab.data.packing import pack_lesson

    lesson = pack_lesson(number)
    if json_output:
        print_json(lesson.to_json())
        return
    _out(f"{number} packed with struct:")
    for p in lesson.packed:
        if p.data is not None:
            _out(f"  {p.format:<3} {p.data.hex(' '):<24} {p.meaning}")
        else:
            _out(f"  {p.format:<3} {p.meaning}: {p.error}")
    if lesson.misread is not None:
        _out(f"the '>i' bytes read back as '<i' give {lesson.misread}: byte order matters")


@data_app.command("pickle")
def pickle_(json_output: JsonOption = False) -> None:
    """Show pickle framing itself (STOP ends each object), and why it never crosses our wire."""
    from wirelab.data.pickling import TRAILER, code_on_load, self_delimiting

    stream, frames, stopped = self_delimiting()
    hostile = code_on_load()
    if json_output:
        print_json(
            {
                "stream_bytes": len(stream),
                "loads": [f.to_json() for f in frames],
                "stopped_at": stopped,
                "trailer": TRAILER.decode("ascii"),
                "code_on_load": hostile.to_json(),
            }
        )
        return
    _out(f"{len(frames)} pickles back to back, then {TRAILER!r}: {len(stream)} bytes")
    for f in frames:
        _out(
            f"  pickle.load at offset {f.offset:>3} read {f.size:>3} bytes, ending in "
            f"{f.last_byte!r} (STOP): {f.value!r}"
        )
    _out(f"the loads stopped at offset {stopped}; {stream[stopped:]!r} was never read")
    _out("pickle frames itself: no length prefix, no delimiter. But loading runs code:")
    _out(f"  the {len(hostile.data)} bytes {hostile.data!r}")
    _out(f"  are opcodes {' '.join(hostile.opcodes)}")
    _out(f"  and pickle.loads returned {hostile.result!r}: it called {hostile.called}")
    _out("a peer's pickle can name os.system as easily, so wirelab never loads one from the wire")


# -- wirelab stream ----------------------------------------------------------------------------


def _serve_stream(host: str, number: int, max_size: int) -> None:
    from wirelab.data.stream import open_stream_server

    run_server(
        lambda: open_stream_server(host, number, max_size=max_size),
        "framing by end-of-file",
        loggers=("wirelab.data",),
    )


def _serve_blocks(host: str, number: int, max_size: int) -> None:
    from wirelab.data.blocks import open_blocks_server

    run_server(
        lambda: open_blocks_server(host, number, max_block=max_size),
        "length-prefixed blocks",
        loggers=("wirelab.data",),
    )


@stream_app.command("serve")
def stream_serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    max_size: MaxSizeOption = DEFAULT_MAX_MESSAGE,
) -> None:
    """Read each connection to end-of-file, then answer with a summary (Ctrl-C stops)."""
    number = parse_port(port, "tcp") if port is not None else default_port("blocks", "stream")
    _serve_stream(host, number, max_size)


@stream_app.command("client")
def stream_client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    message: MessageOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Send a message, half-close (SHUT_WR), and check the server's summary if it sends one."""
    from wirelab.data.stream import ZEN, send_stream

    where, number = lab_target("blocks", host, port, endpoint="stream")
    data = "".join(message).encode("utf-8") if message else ZEN
    report = send_stream(where, number, data, timeout=timeout)
    if json_output:
        print_json(report.to_json())
        return
    _out(f"sent {report.sent} bytes to {report.server}, then shutdown(SHUT_WR): end of file")
    summary = report.summary
    if summary is None:
        _out("the server closed without a summary (as the book's does): nothing verified")
        return
    _out(f"the server answered: received {summary.size} bytes, sha256 {summary.sha256[:16]}...")
    _out("byte count and digest match what we sent")


# -- wirelab blocks ----------------------------------------------------------------------------


@blocks_app.command("serve")
def blocks_serve(
    host: ServeHostArgument = LOOPBACK,
    port: PortOption = None,
    max_size: MaxSizeOption = DEFAULT_MAX_MESSAGE,
) -> None:
    """Read length-prefixed blocks until an empty one, then answer with a summary block."""
    number = parse_port(port, "tcp") if port is not None else default_port("blocks", "blocks")
    _serve_blocks(host, number, max_size)


@blocks_app.command("client")
def blocks_client(
    host: ClientHostArgument = None,
    port: PortOption = None,
    message: MessageOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Send each message as one block, then an empty block, and check a summary if one comes."""
    from wirelab.data.blocks import BOOK_BLOCKS, send_blocks

    where, number = lab_target("blocks", host, port, endpoint="blocks")
    blocks = [m.encode("utf-8") for m in message] if message else list(BOOK_BLOCKS)
    report = send_blocks(where, number, blocks, timeout=timeout)
    if json_output:
        print_json(report.to_json())
        return
    for block in blocks:
        _out(f"block of {len(block):>3} bytes: header {len(block).to_bytes(4, 'big').hex(' ')}")
    _out(f"sent {report.count} blocks ({report.size} bytes) and an empty block to {report.server}")
    summary = report.summary
    if summary is None:
        _out("the server closed without a summary (as the book's does): nothing verified")
        return
    _out(
        f"the server answered: received {summary.blocks} blocks, {summary.size} bytes, "
        f"sha256 {summary.sha256[:16]}..."
    )
    _out("block count, byte count and digest match what we sent")
