"""The remote functions of chapter 18, written to be right (the book's have five bugs).

The book's ``xmlrpc_server.py`` divides by ``2a`` by multiplying by ``a`` (2x²-4x gives
[0, 8], not [0, 2]), fails on a negative discriminant with "math domain error", returns the
roots in a set's arbitrary order, has ``remote_repr`` return its argument instead of its
``repr``, and raises TypeError for ``addtogether()`` with no arguments. These do not.

Every function here raises :class:`RPCArgumentError` for arguments it cannot take; the
dispatchers turn that into the protocol's "invalid params" fault, in our own words.
"""

from __future__ import annotations

import math
from collections.abc import Sized
from typing import Any

__all__ = [
    "FUNCTIONS",
    "RPCArgumentError",
    "addtogether",
    "lengths",
    "quadratic",
    "remote_repr",
]


class RPCArgumentError(Exception):
    """The arguments of a remote call are not what the function takes (one clear sentence)."""


def _type_name(value: object) -> str:
    return type(value).__name__


def addtogether(*things: Any) -> Any:
    """Add together everything in the list `things` (no arguments: 0)."""
    if not things:
        return 0
    total = things[0]
    for thing in things[1:]:
        if isinstance(total, dict) or isinstance(thing, dict):
            raise RPCArgumentError("addtogether cannot add structs")
        try:
            total = total + thing
        except TypeError:
            raise RPCArgumentError(
                f"addtogether cannot add {_type_name(thing)} to {_type_name(total)}"
            ) from None
    return total


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RPCArgumentError(f"quadratic takes numbers: {name} is {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise RPCArgumentError(f"quadratic: {name} is too large for a double") from None
    if not math.isfinite(number):
        raise RPCArgumentError(f"quadratic takes finite numbers: {name} is {number}")
    return number


#: Coefficients between this and its inverse need no scaling: b*b and 4*a*c stay finite.
_MODEST = 2.0**-500


def quadratic(a: Any, b: Any, c: Any) -> list[float]:
    """Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0 (real roots, ascending)."""
    fa, fb, fc = _number("a", a), _number("b", b), _number("c", c)
    if fa == 0:
        raise RPCArgumentError("a = 0: not a quadratic equation")
    # Coefficients far from 1 are scaled by a power of two (exact) so the largest is near 1:
    # b*b and 4*a*c then cannot overflow or vanish. Others are left as they are, since a
    # scaled subnormal coefficient would round to zero and could flip the discriminant's sign.
    largest = max(abs(fa), abs(fb), abs(fc))
    scale = 1.0 if _MODEST <= largest <= 1 / _MODEST else math.ldexp(1.0, math.frexp(largest)[1])
    fa, fb, fc = fa / scale, fb / scale, fc / scale
    discriminant = fb * fb - 4.0 * fa * fc
    if discriminant < 0:
        raise RPCArgumentError(
            f"no real roots: the discriminant b²-4ac is {discriminant * scale * scale:g} < 0"
        )
    if discriminant == 0:
        return [-fb / (2.0 * fa) + 0.0]  # + 0.0: -0.0 becomes 0.0
    # The stable form (no cancellation between -b and the square root).
    q = -0.5 * (fb + math.copysign(math.sqrt(discriminant), fb))
    roots = {q / fa + 0.0, (fc / q if q != 0 else 0.0) + 0.0}
    return sorted(roots)


def remote_repr(arg: Any) -> str:
    """Return the `repr()` rendering of the supplied `arg`."""
    return repr(arg)


def lengths(*args: Any) -> list[list[Any]]:
    """Measure the length of each input argument.

    Given N arguments, this function returns a list of N smaller lists of the form
    [len(arg), arg] that each state the length of an input argument and also echo back the
    argument itself (None for the length of an argument that has none).
    """
    return [[len(arg) if isinstance(arg, Sized) else None, arg] for arg in args]


#: The XML-RPC functions by name, as the book's server registers them.
FUNCTIONS = {
    "addtogether": addtogether,
    "quadratic": quadratic,
    "remote_repr": remote_repr,
}
