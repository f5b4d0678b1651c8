"""Chapter 1 in the tour: one address geocoded four ways, names to addresses, bytes to text."""

from __future__ import annotations

from wirelab.lab.tour import Chapter, TourContext

CHAPTER = Chapter(
    1,
    "Introduction to client-server networking",
    "The same question asked four ways, from a library call down to bytes over TLS.",
)

ADDRESS = "207 N. Defiance St, Archbold, OH"
ARCHBOLD = (41.5214, -84.3072)
TOLERANCE = 0.05


def _near(lat: float, lon: float) -> bool:
    return abs(lat - ARCHBOLD[0]) <= TOLERANCE and abs(lon - ARCHBOLD[1]) <= TOLERANCE


def _way_step(way: str, what: str) -> None:
    @CHAPTER.step(f"geocode the book's address: {what}")
    def _step(ctx: TourContext) -> None:
        from wirelab.geo.client import geocode
        from wirelab.geo.providers import lab_provider

        provider = lab_provider(ctx.lab)
        found = geocode(ADDRESS, provider=provider, way=way)
        ctx.check(found, f"the {way} way found nothing for {ADDRESS!r}")
        place = found[0]
        ctx.say(f"{way}: {place.latitude:.4f}, {place.longitude:.4f}  {place.address}")
        ctx.check(_near(place.latitude, place.longitude), f"{way}: too far from Archbold")


_way_step("library", "geopy's Nominatim geocoder (a descriptive User-Agent)")
_way_step("requests", "requests with query parameters, a User-Agent and a status check")
_way_step("httpclient", "http.client.HTTPSConnection with a verifying context")
_way_step("raw", "raw HTTP/1.1 over SSLContext.wrap_socket (SNI, verification)")


@CHAPTER.step("under the raw way: the response really is chunked HTTP/1.1")
def _raw_bytes(ctx: TourContext) -> None:
    from wirelab.geo.client import raw_get
    from wirelab.geo.providers import lab_provider

    provider = lab_provider(ctx.lab)
    response = raw_get(provider, provider.target("Paris", limit=5))
    ctx.say(f"status line: {response.version} {response.status} {response.reason}")
    ctx.say(f"Transfer-Encoding: {response.header('Transfer-Encoding')}")
    ctx.say(f"the body came in {response.chunks} chunks, {len(response.body)} bytes in all")
    ctx.say(f"TLS name checked and sent as SNI: {provider.tls_name}")
    ctx.check(response.status == 200 and response.framing == "chunked", "expected chunked 200")


@CHAPTER.step("the Google-shaped API answers too, and an unknown place is an empty list")
def _google_and_empty(ctx: TourContext) -> None:
    from wirelab.geo.client import geocode
    from wirelab.geo.providers import lab_provider

    google = lab_provider(ctx.lab, style="google")
    found = geocode("Tokyo, Japan", provider=google, way="requests")
    ctx.check(found, "Tokyo was not found")
    ctx.say(f"Google shape: Tokyo is at {found[0].latitude:.4f}, {found[0].longitude:.4f}")
    nothing = geocode("Atlantis, Nowhere", provider=lab_provider(ctx.lab), way="httpclient")
    ctx.say(f"'Atlantis, Nowhere' -> {nothing} (HTTP 200, an empty list, not an error)")
    ctx.check(nothing == [], "an unknown place should give no result")


@CHAPTER.step("a host name becomes an IPv4 address (the lab's DNS, then the system's)")
def _getname(ctx: TourContext) -> None:
    from wirelab.dns.client import Server, make_resolver
    from wirelab.dns.names import host_address

    endpoint = ctx.lab.endpoint("dns", "udp")
    resolver = make_resolver(Server(endpoint.address, endpoint.port))
    address, via = host_address("nominatim.example.com", resolver=resolver)
    ctx.say(f"The IP address of nominatim.example.com is {address} ({via})")
    ctx.check(address == endpoint.address, f"expected the lab's address, got {address}")


@CHAPTER.step("the network carries bytes: decode UTF-16, encode UTF-8")
def _bytes(ctx: TourContext) -> None:
    from wirelab.geo.stringcodes import decode_incoming, encode_outgoing

    incoming = decode_incoming()
    outgoing = encode_outgoing()
    ctx.say(f"{incoming.size} UTF-16 bytes decode to {incoming.text!r}")
    ctx.say(f"{outgoing.characters} characters encode to {outgoing.size} UTF-8 bytes")
    ctx.check(outgoing.size > outgoing.characters, "non-ASCII text should need more bytes")
    ctx.check(incoming.data[:2] == b"\xff\xfe", "the UTF-16 bytes should start with a BOM")


CHAPTERS = (CHAPTER,)
