"""Chapter 12: messages built with the policy API and read back; the CLI as a user runs it."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from tests.conftest import run_wirelab
from wirelab.mail.messages import (
    build_mime,
    build_text,
    build_unicode,
    mime_tree,
    parse,
    summarize,
)
from wirelab.mail.seed import NESTED_SUBJECT, seed_messages


def test_plain_message_has_date_message_id_and_crlf() -> None:
    data = build_text("a@example.com", ["b@example.com", "c@example.com"], "Hi", "Body\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["To"] == "b@example.com, c@example.com"
    assert message["Date"].datetime is not None
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@example.com>")


def test_header_injection_through_a_header_value_is_refused() -> None:
    import pytest

    from wirelab.errors import ConfigError

    with pytest.raises(ConfigError, match="line break"):
        build_text("a@example.com", ["b@example.com\r\nBcc: evil@example.org"], "x", "y\n")


def test_alternative_plain_first_html_last_inline_image_and_attachments(tmp_path: Path) -> None:
    text = tmp_path / "sub" / "notes.txt"
    text.parent.mkdir()
    text.write_text("This is a test\n")
    gz = tmp_path / "attachment.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    data = build_mime(
        "a@example.com",
        ["b@example.com"],
        "MIME",
        "plain\n",
        "<p>html</p>",
        inline_image=True,
        attachments=[text, gz],
    )
    message = parse(data)
    parts = mime_tree(message)
    assert [(p.number, p.content_type) for p in parts] == [
        ("", "multipart/mixed"),
        (".0", "multipart/alternative"),
        (".0.0", "text/plain"),
        (".0.1", "multipart/related"),
        (".0.1.0", "text/html"),
        (".0.1.1", "image/gif"),
        (".1", "text/plain"),
        (".2", "application/octet-stream"),  # compressed: octet-stream, as the book
    ]
    html = parts[4]
    assert html.kind == "str"
    cid = message.get_body(("html",)).get_content().split('src="cid:')[1].split('"')[0]
    image = list(message.walk())[5]
    assert image["Content-ID"] == f"<{cid}>"
    # only base names, never the path given (the book leaked it)
    assert parts[6].filename == "notes.txt" and parts[7].filename == "attachment.gz"
    assert str(tmp_path) not in data.decode("ascii")
    summary = summarize(message)
    assert summary.body_type == "text/plain" and summary.body == "plain\n"
    assert [a["filename"] for a in summary.attachments] == ["notes.txt", "attachment.gz"]


def test_unicode_headers_are_rfc2047_and_body_quoted_printable() -> None:
    data = build_unicode("a@example.com", "Þeodcyning", "b@example.com", "Hwæt")
    assert data.isascii()
    assert b"Subject: =?utf-8?" in data and b"Content-Transfer-Encoding: quoted-printable" in data
    message = parse(data)
    assert message["Subject"] == "Hwæt" and "Þeodcyning" in message["To"]
    assert "Gardena" in message.get_body().get_content()


def test_unknown_charset_is_shown_not_crashed_on() -> None:
    data = (
        b"From: a@example.com\r\nSubject: odd\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="x-no-such-charset"\r\n\r\nHello \xe9\r\n'
    )
    summary = summarize(parse(data))
    assert summary.body is not None and summary.body.startswith("Hello")
    assert summary.notes == ["unknown charset 'x-no-such-charset'"]
    tree = mime_tree(parse(data))
    assert "unknown charset" in tree[0].line()


def test_the_seeded_nested_message_parses_to_depth_four() -> None:
    nested = seed_messages()[3]
    message = parse(nested)
    assert message["Subject"] == NESTED_SUBJECT
    numbers = [p.number for p in mime_tree(message)]
    assert ".0.1.1" in numbers and ".2.0.1" in numbers
    # the stdlib's own parser agrees on the structure
    legacy = email.message_from_bytes(nested, policy=email.policy.compat32)
    assert len(list(legacy.walk())) == len(numbers)


def test_cli_build_tree_show(tmp_path: Path) -> None:
    attachment = tmp_path / "attachment.txt"
    attachment.write_text("This is a test\n")
    out = tmp_path / "m.eml"
    done = run_wirelab(
        "mail",
        "build",
        str(attachment),
        "--html",
        "<b>hi</b>",
        "--inline-image",
        "--to",
        "brandon@example.com",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    tree = run_wirelab("mail", "tree", str(out))
    assert tree.returncode == 0, tree.stderr
    assert "    .0.1.1 type=image/gif bytes len=43" in tree.stdout
    assert "  .1 type=text/plain str len=16 attachment filename='attachment.txt'" in tree.stdout
    show = run_wirelab("mail", "show", "--json", str(out))
    document = json.loads(show.stdout)
    assert document["headers"]["To"] == "brandon@example.com"
    assert document["body_type"] == "text/plain"
    assert document["attachments"][-1]["filename"] == "attachment.txt"


def test_cli_show_reads_stdin_and_bad_input_is_one_line(tmp_path: Path) -> None:
    built = build_unicode("a@example.com", "Þeodcyning", "b@example.com", "Hwæt")
    show = run_wirelab("mail", "show", input=built.decode("ascii"))
    assert show.returncode == 0 and "Hwæt! We Gardena" in show.stdout
    missing = run_wirelab("mail", "tree", str(tmp_path / "nope.eml"))
    assert missing.returncode in (1, 2) and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
