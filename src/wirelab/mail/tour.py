"""Chapter 12 in the tour: build messages with the policy API and read them back."""

from __future__ import annotations

from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    12,
    "Building and parsing e-mail",
    "Headers, a blank line, a body; MIME trees of alternatives, related parts and attachments.",
)


@CHAPTER.step("a plain-text message with Date and Message-ID, CRLF line ends")
def _plain(ctx: TourContext) -> None:
    from wirelab.mail.messages import build_text, parse

    data = build_text("author@example.com", ["brandon@example.com"], "Hello", "Hello,\nworld.\n")
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    ctx.say(head)
    message = parse(data)
    ctx.check(message["Date"] and message["Message-ID"], "Date or Message-ID missing")
    ctx.check(b"\n" not in data.replace(b"\r\n", b""), "a bare LF in the message")


@CHAPTER.step("alternatives (plain first, HTML last), an inline image by cid:, an attachment")
def _mime(ctx: TourContext) -> None:
    import tempfile
    from pathlib import Path

    from wirelab.mail.messages import build_mime, mime_tree, parse, summarize

    with tempfile.TemporaryDirectory() as tmp:
        attachment = Path(tmp) / "attachment.txt"
        attachment.write_text("This is a test\n")
        data = build_mime(
            "author@example.com",
            ["brandon@example.com"],
            "MIME",
            "Hello,\nplain text.\n",
            "<p>Hello, <b>HTML</b>.</p>",
            inline_image=True,
            attachments=[attachment],
        )
    parts = mime_tree(parse(data))
    for part in parts:
        ctx.say(part.line())
    types = [part.content_type for part in parts]
    ctx.check(types[2] == "text/plain" and types[3] == "multipart/related", f"order {types}")
    ctx.check(parts[-1].filename == "attachment.txt", "the attachment lost its base name")
    summary = summarize(parse(data))
    ctx.check(summary.body_type == "text/plain", "the best body is not the plain text")


@CHAPTER.step("non-ASCII headers become RFC 2047 words; the body goes quoted-printable")
def _unicode(ctx: TourContext) -> None:
    from wirelab.mail.messages import build_unicode, parse

    data = build_unicode("author@example.com", "Þeodcyning", "brandon@example.com", "Hwæt")
    to_line = next(line for line in data.split(b"\r\n") if line.startswith(b"To:"))
    ctx.say(to_line.decode("ascii"))
    ctx.check(b"=?utf-8?" in data and b"quoted-printable" in data, "no encoded word or QP")
    ctx.check("Þeodcyning" in str(parse(data)["To"]), "the name did not survive")


CHAPTERS = (CHAPTER,)
