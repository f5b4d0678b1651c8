"""Chapter 7 in the tour: one protocol, eleven server architectures, all correct."""

from __future__ import annotations

import socket

from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    7,
    "Server architectures",
    "One tiny protocol served eleven ways; every one must answer pipelined questions correctly.",
)

BURST = 300


@CHAPTER.step("the lab's Zen server answers the aphorisms, asked in random order")
def _lab(ctx: TourContext) -> None:
    from wirelab.zen.client import ask

    host, port = ctx.lab.endpoint("zen").sockaddr
    for exchange in ask(host, port):
        ctx.say(f"{exchange.question} {exchange.answer}")
        ctx.check(not exchange.answer.startswith("Error"), f"bad answer {exchange.answer!r}")


@CHAPTER.step("every architecture answers: sequential, a pipelined burst, byte at a time")
def _every_arch(ctx: TourContext) -> None:
    from wirelab.zen._core import ZenConfig, answer_for
    from wirelab.zen.archs import ARCHS, start_server
    from wirelab.zen.client import ask, pipelined_questions

    config = ZenConfig(idle_timeout=5.0, workers=2)
    burst = pipelined_questions(BURST)
    for name, arch in ARCHS.items():
        with start_server(name, config=config) as server:
            host, port = server.address
            sequential = ask(host, port)
            piped = ask(host, port, burst, pipeline=BURST)
            with socket.create_connection(server.address, timeout=5.0) as sock:
                for byte in b"Simple is better than?":
                    sock.send(bytes([byte]))
                got = b""
                while not got.endswith(b"."):
                    chunk = sock.recv(100)
                    if not chunk:
                        break
                    got += chunk
        right = sum(answer_for(e.question.encode()).decode() == e.answer for e in piped)
        ctx.say(
            f"{name:17} ({arch.book}): 3 questions ok, {right}/{BURST} pipelined answers "
            f"right, byte-at-a-time -> {got.decode()!r}"
        )
        ctx.check(len(sequential) == 3, f"{name}: the sequential exchange failed")
        ctx.check(right == BURST, f"{name}: {BURST - right} pipelined answers were wrong")
        ctx.check(got == b"Complex.", f"{name}: byte-at-a-time got {got!r}")


@CHAPTER.step("the book's recv_until loses the second of two questions sent together")
def _book_bug(ctx: TourContext) -> None:
    from wirelab.net.addresses import listen_tcp
    from wirelab.zen._core import ZenConfig
    from wirelab.zen.book import BOOK_ARCHS

    two = b"Beautiful is better than?Simple is better than?"
    book = BOOK_ARCHS["book-single"](listen_tcp("127.0.0.1", 0), ZenConfig())
    with book, socket.create_connection(book.address, timeout=5.0) as sock:
        sock.sendall(two)
        theirs = sock.recv(100)
    with socket.create_connection(ctx.lab.endpoint("zen").sockaddr, timeout=5.0) as sock:
        sock.sendall(two)
        ours = b""
        while ours.count(b".") < 2:
            chunk = sock.recv(100)
            if not chunk:
                break
            ours += chunk
    ctx.say(f"the book's design answers {theirs.decode()!r} and nothing more")
    ctx.say(f"ours answers {ours.decode()!r}")
    ctx.check(ours == b"Ugly.Complex.", f"ours answered {ours!r}")


@CHAPTER.step("bad input: an unknown aphorism, then a question over the limit")
def _errors(ctx: TourContext) -> None:
    from wirelab.zen.client import broken_questions

    host, port = ctx.lab.endpoint("zen").sockaddr
    shown = broken_questions(host, port)
    for exchange in shown:
        ctx.say(f"{exchange.question} -> {exchange.answer}")
    ctx.check(shown[1].answer == "Error: question too long.", "no error for a long question")
    ctx.check(shown[2].answer == "(connection closed)", "the server did not close")


@CHAPTER.step("inetd styles: a process per connection, and one that takes the listener")
def _inetd(ctx: TourContext) -> None:
    from wirelab.zen.client import ask

    for endpoint in ("inetd-nowait", "inetd-wait"):
        host, port = ctx.lab.endpoint("zen", endpoint).sockaddr
        answers = ask(host, port)
        ctx.say(f"{endpoint} on port {port}: {', '.join(a.answer for a in answers)}")
        ctx.check(len(answers) == 3, f"{endpoint} did not answer")


CHAPTERS = (CHAPTER,)
