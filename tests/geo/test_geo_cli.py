"""``wirelab geo ...`` as subprocesses against the session lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ADDRESS = "207 N. Defiance St, Archbold, OH"


def run(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wirelab", "geo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def env(wirelab_env: dict[str, str], lab_geo: object) -> dict[str, str]:
    return wirelab_env


@pytest.mark.parametrize("way", ["library", "requests", "httpclient", "raw"])
def test_search_each_way(env: dict[str, str], way: str) -> None:
    done = run(env, "search", ADDRESS, "--way", way, "--json")
    assert done.returncode == 0, done.stderr
    (place,) = json.loads(done.stdout)
    assert abs(place["lat"] - 41.5214) <= 0.05 and abs(place["lon"] + 84.3072) <= 0.05


def test_search_text_and_google_shape(env: dict[str, str]) -> None:
    done = run(env, "search", ADDRESS)
    assert "41.5333, -84.3048  Archbold" in done.stdout
    google = run(env, "search", "Tokyo, Japan", "--provider", "lab-google", "--way", "raw")
    assert google.returncode == 0 and "Tokyo, Japan" in google.stdout


def test_unknown_place_and_bad_input(env: dict[str, str]) -> None:
    nothing = run(env, "search", "Atlantis, Nowhere")
    assert nothing.returncode == 1 and "no place matches" in nothing.stderr
    empty = run(env, "search", "", "--way", "raw")
    assert (
        empty.returncode == 1 and empty.stderr == "wirelab: error: bad query: the query is empty\n"
    )
    bad_way = run(env, "search", ADDRESS, "--way", "carrier-pigeon")
    assert bad_way.returncode == 2 and "unknown way 'carrier-pigeon'" in bad_way.stderr
    bad_provider = run(env, "search", ADDRESS, "--provider", "yellow-pages")
    assert bad_provider.returncode == 2 and "unknown provider" in bad_provider.stderr
    google = run({**env, "WIRELAB_GOOGLE_API_KEY": ""}, "search", ADDRESS, "--provider", "google")
    assert google.returncode == 1 and "API key" in google.stderr


@pytest.mark.parametrize("way", ["library", "requests", "httpclient", "raw"])
def test_bytes_that_are_not_utf8_are_one_line_for_every_way(env: dict[str, str], way: str) -> None:
    """``wirelab geo search "$(printf 'caf\\xe9')"``: Latin-1 bytes in argv, no traceback."""
    for argv in ([b"caf\xe9"], [b"caf\xe9, Paris"], [b"\xff\xfe"]):
        done = subprocess.run(
            [sys.executable, "-m", "wirelab", "geo", "search", *argv, "--way", way],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr  # a usage error, as for any argument
        assert done.stdout == b""
        (line,) = done.stderr.decode("utf-8", "backslashreplace").splitlines()
        assert line.startswith("wirelab: error: argument 3 is not valid UTF-8 text: b'")


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("", "the query is empty"),
        ("x" * 10_000, "the query is too long (over 256 characters)"),
        ("Archbold,\tOH\n43502", "the query contains control characters"),
    ],
)
@pytest.mark.parametrize("way", ["library", "requests"])
def test_bad_queries_are_one_clear_line(
    env: dict[str, str], way: str, address: str, why: str
) -> None:
    """The library way used to say only "Non-successful status code 400"; now every way
    refuses the query before asking, in the same words."""
    done = run(env, "search", address, "--way", way)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"wirelab: error: bad query: {why}\n"


def test_stringcodes_writes_no_file(env: dict[str, str], tmp_path: Path) -> None:
    done = run(env, "stringcodes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "decoded as utf-16" in done.stdout and "encoded as utf-8" in done.stdout
    assert list(tmp_path.iterdir()) == []
    doc = json.loads(run(env, "stringcodes", "--text", "café", "--json", cwd=tmp_path).stdout)
    assert doc["outgoing"]["bytes_hex"] == "636166c3a9"
    assert run(env, "stringcodes", "--text", "✓", "--encoding", "ascii").returncode == 1


@pytest.mark.parametrize("way", ["library", "requests", "httpclient", "raw"])
def test_with_no_lab_a_private_geocoder_answers(
    wirelab_env: dict[str, str], tmp_path: Path, way: str
) -> None:
    """`wirelab geo search ADDRESS` works offline from a clean machine, with no lab up."""
    env = {**wirelab_env, "WIRELAB_HOME": str(tmp_path / "no-lab-here")}
    done = run(env, "search", ADDRESS, "--way", way, "--json")
    assert done.returncode == 0, done.stderr
    assert "a private lab geocoder answers" in done.stderr
    place = json.loads(done.stdout)[0]
    assert abs(place["lat"] - 41.5214) < 0.05 and abs(place["lon"] + 84.3072) < 0.05


def test_the_cli_grammar_short_flags(env: dict[str, str]) -> None:
    """-n/--count (--limit kept), -t via the shared TimeoutOption; -w, -P, -e are not ours."""
    for flag in ("-n", "--count", "--limit"):
        done = run(env, "search", "Springfield", flag, "3", "--json")
        assert done.returncode == 0, done.stderr
        assert len(json.loads(done.stdout)) == 3
    done = run(env, "search", ADDRESS, "-t", "5", "--json")
    assert done.returncode == 0, done.stderr
    for bad in (["-t", "inf"], ["-t", "0"], ["-t", "nan"], ["-n", "0"], ["-n", "51"]):
        done = run(env, "search", ADDRESS, *bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert "Traceback" not in done.stderr
    for reserved in (["-w", "raw"], ["-P", "lab"]):
        assert run(env, "search", ADDRESS, *reserved).returncode == 2
    assert run(env, "stringcodes", "-e", "ascii").returncode == 2
