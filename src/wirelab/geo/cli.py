"""``wirelab geo search|stringcodes`` (chapter 1)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wirelab.cli.common import (
    JsonOption,
    TimeoutOption,
    console,
    err_console,
    lab_state,
    print_json,
)

if TYPE_CHECKING:
    from wirelab.geo.providers import Provider

__all__ = ["app"]

app = typer.Typer(
    name="geo",
    help="Chapter 1: geocoding four ways (library, requests, http.client, raw TLS), and bytes.",
    no_args_is_help=True,
)

WAYS = ("library", "requests", "httpclient", "raw")
PROVIDERS = ("lab", "lab-google", "nominatim", "google")


def _choice(value: str, known: tuple[str, ...], what: str) -> str:
    if value not in known:
        raise typer.BadParameter(f"unknown {what} {value!r} (one of {', '.join(known)})")
    return value


@contextmanager
def _provider(name: str, api_key: str | None) -> Iterator[Provider]:
    """The provider; for the lab ones with no lab running, a private lab geocoder meanwhile."""
    from wirelab.geo.providers import lab_provider, make_provider

    style = {"lab": "nominatim", "lab-google": "google"}.get(name)
    if style is None or lab_state() is not None:
        yield make_provider(name, api_key=api_key)
        return
    from wirelab.geo.service import GeoService
    from wirelab.lab.service import LabContext
    from wirelab.lab.supervisor import LabThread

    err_console.print("(no lab is running: a private lab geocoder answers for this command)")
    with (
        tempfile.TemporaryDirectory(prefix="wirelab-geo-") as tmp,
        LabThread([GeoService()], LabContext(state_dir=Path(tmp), ephemeral=True)) as state,
    ):
        yield lab_provider(state, style=style)


@app.command()
def search(
    address: Annotated[
        str, typer.Argument(help='Address, e.g. "207 N. Defiance St, Archbold, OH".')
    ],
    way: Annotated[
        str,
        typer.Option(
            "--way",
            help=f"How to ask: {', '.join(WAYS)}.",
            callback=lambda value: _choice(value, WAYS, "way"),
        ),
    ] = "library",
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            help=f"Who answers: {', '.join(PROVIDERS)} (the real ones need the internet). "
            "With no lab running, the lab ones start a private lab geocoder.",
            callback=lambda value: _choice(value, PROVIDERS, "provider"),
        ),
    ] = "lab",
    count: Annotated[
        int,
        typer.Option(
            "-n", "--count", "--limit", min=1, max=50, help="How many places to print (1-50)."
        ),
    ] = 1,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", help="Google API key (or $WIRELAB_GOOGLE_API_KEY).", show_default=False
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Geocode ADDRESS and print latitude and longitude (exit 1 if nothing matches).

    ADDRESS must be one line of text, 1 to 256 characters; anything else exits 1 with one
    line, before any request (bytes that are not UTF-8 are a usage error: exit 2).
    """
    from wirelab.geo.client import check_query, geocode

    check_query(address)  # a bad query is one line, before any provider or lab is needed
    with _provider(provider, api_key) as chosen:
        err_console.print(f"(asking {chosen.name} at {chosen.netloc}, the {way} way)")
        found = geocode(address, provider=chosen, way=way, timeout=timeout, limit=count)
    if json_output:
        print_json(
            [{"lat": f.latitude, "lon": f.longitude, "display_name": f.address} for f in found]
        )
    else:
        for place in found:
            console.print(f"{place.latitude:.4f}, {place.longitude:.4f}  {place.address}")
    if not found:
        err_console.print(f"no place matches {address!r}")
        raise typer.Exit(1)


@app.command()
def stringcodes(
    text: Annotated[
        str | None, typer.Option("--text", help="A sentence to encode instead of the example.")
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="The encoding for the outgoing sentence.")
    ] = "utf-8",
    json_output: JsonOption = False,
) -> None:
    """Decode UTF-16 bytes (with a BOM) into text; encode a sentence into bytes. No file."""
    from wirelab.errors import ConfigError
    from wirelab.geo.stringcodes import OUTGOING, decode_incoming, encode_outgoing

    incoming = decode_incoming()
    try:
        outgoing = encode_outgoing(text if text is not None else OUTGOING, encoding)
    except LookupError as exc:
        raise ConfigError(f"unknown encoding {encoding!r}") from exc
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{encoding} cannot encode {exc.object[exc.start : exc.end]!r}") from exc
    if json_output:
        print_json(
            {
                "incoming": {"bytes_hex": incoming.data.hex(), "encoding": incoming.encoding}
                | {"text": incoming.text, "bytes": incoming.size},
                "outgoing": {"text": outgoing.text, "encoding": outgoing.encoding}
                | {"bytes_hex": outgoing.data.hex(), "bytes": outgoing.size},
            }
        )
        return
    console.print(f"received {incoming.size} bytes: {incoming.hex(24)}")
    console.print(f"decoded as {incoming.encoding} (the BOM ff fe says little-endian):")
    console.print(f"  {incoming.text!r} ({incoming.characters} characters)")
    console.print(f"to send {outgoing.text!r} ({outgoing.characters} characters)")
    console.print(f"encoded as {outgoing.encoding}: {outgoing.size} bytes")
    console.print(f"  {outgoing.data!r}")
