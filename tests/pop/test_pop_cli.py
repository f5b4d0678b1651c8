"""``wirelab pop`` against our server (the same as ``poplib`` sees) and its error paths."""

from __future__ import annotations

import json

from tests.conftest import run_wirelab
from tests.pop.conftest import PopHost


def _pop(host: PopHost, *args: str, tls: bool = True, input: str | None = None) -> list[str]:
    port = host.tls_port if tls else host.port
    return [
        "pop",
        *args,
        "127.0.0.1",
        "-p",
        str(port),
        "--cafile",
        str(host.ca.cert_path),
        "--password",
        "abc123",
        *(() if tls else ("--stls",)),
    ]


def test_stat_list_like_the_book(pop_host: PopHost) -> None:
    messages = pop_host.store.messages("brandon")
    done = run_wirelab(*_pop(pop_host, "stat"))
    assert done.returncode == 0, done.stderr
    total = sum(m.size for m in messages)
    assert done.stdout.strip() == f"You have {len(messages)} messages totaling {total} bytes"
    done = run_wirelab(*_pop(pop_host, "list", "--json"))
    listing = json.loads(done.stdout)
    assert [(e["size"], e["uid"]) for e in listing] == [(m.size, m.key) for m in messages]


def test_stls_apop_and_verbose_hides_secrets(pop_host: PopHost) -> None:
    done = run_wirelab(*_pop(pop_host, "stat", "--apop", "-v", tls=False))
    assert done.returncode == 0, done.stderr
    assert "C: STLS" in done.stderr and "C: APOP brandon ****" in done.stderr
    assert "abc123" not in done.stderr


def test_fetch_is_byte_identical_and_delete_at_quit(pop_host: PopHost, tmp_path: object) -> None:
    from pathlib import Path

    out = Path(str(tmp_path)) / "one.eml"
    first = pop_host.store.messages("brandon")[0]
    expected = first.read_bytes()
    done = run_wirelab(*_pop(pop_host, "fetch", "1", "-o", str(out), "--delete", "--json"))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expected
    assert json.loads(done.stdout)["deleted"] is True
    assert first.key not in [m.key for m in pop_host.store.messages("brandon")]


def test_review_reads_and_deletes_only_what_was_answered(pop_host: PopHost) -> None:
    before = pop_host.store.messages("brandon")
    answers = "y\nn\nn\ny\nn\nn\nn\nn\n"
    done = run_wirelab(*_pop(pop_host, "review"), input=answers)
    assert done.returncode == 0, done.stderr
    assert "Subject: Welcome to example.com!" in done.stdout
    assert "Read this message [ny]?" in done.stdout and "Deleted." in done.stdout
    assert "This mailbox belongs to" in done.stdout
    after = [m.key for m in pop_host.store.messages("brandon")]
    assert after == [m.key for m in before if m.key != before[1].key]


def test_eight_bit_mail_is_decoded_not_crashed_on(pop_host: PopHost) -> None:
    raw = "Subject: caf\u00e9\r\nFrom: r\u00e9my@example.com\r\n\r\nd\u00e9j\u00e0 vu \xff\r\n"
    pop_host.store.clear("brandon")
    pop_host.store.deliver("brandon", raw.encode("latin-1"))
    done = run_wirelab(*_pop(pop_host, "review", "--json"), input="y\nn\n")
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)["messages"][0]
    assert entry["read"] and "vu" in entry["text"][0]


def test_wrong_password_and_refused_port_are_one_line(pop_host: PopHost) -> None:
    args = _pop(pop_host, "stat")
    args[args.index("--password") + 1] = "wrong"
    done = run_wirelab(*args)
    assert done.returncode == 1
    assert done.stderr.startswith("wirelab: error:") and "Authentication failed" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_wirelab("pop", "stat", "127.0.0.1", "-p", "1", "--password", "x")
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_untrusted_certificate_fails_verification(pop_host: PopHost) -> None:
    done = run_wirelab("pop", "stat", "127.0.0.1", "-p", str(pop_host.tls_port), "--password", "x")
    assert done.returncode == 1 and "TLS failure" in done.stderr
