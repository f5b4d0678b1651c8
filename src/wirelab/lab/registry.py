"""Find what each topic package contributes: lab services, tour chapters and CLI groups.

A topic package (``wirelab.udp``, ``wirelab.zen`` ...) plugs in by convention, so adding a
chapter touches no shared file:

* ``wirelab.<topic>.service`` defines ``SERVICES``: a tuple of :class:`Service` instances;
* ``wirelab.<topic>.tour`` defines ``CHAPTERS``: a tuple of :class:`~wirelab.lab.tour.Chapter`;
* ``wirelab.<topic>.cli`` defines ``app`` (one ``typer.Typer``) or ``apps`` (several).

Topic modules import heavy libraries lazily, inside functions, so that discovery stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterator, Sequence
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

import wirelab
from wirelab.errors import ConfigError
from wirelab.lab.service import Service

if TYPE_CHECKING:
    from wirelab.lab.tour import Chapter

__all__ = ["chapters", "find_services", "services", "topic_chapter", "topic_modules"]

#: Packages of wirelab that are infrastructure, not topics.
_NOT_TOPICS = frozenset({"cli", "lab", "net"})


def topic_modules(kind: str) -> Iterator[ModuleType]:
    """Yield ``wirelab.<topic>.<kind>`` for every topic package that has such a module."""
    for info in sorted(pkgutil.iter_modules(wirelab.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name in _NOT_TOPICS or info.name.startswith("_"):
            continue
        name = f"wirelab.{info.name}.{kind}"
        if importlib.util.find_spec(name) is not None:
            yield importlib.import_module(name)


@cache
def services() -> tuple[Service, ...]:
    """Every lab service, ordered by chapter, then name."""
    found = [svc for mod in topic_modules("service") for svc in getattr(mod, "SERVICES", ())]
    names = [svc.name for svc in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"two lab services share a name: {', '.join(sorted(dupes))}")
    return tuple(sorted(found, key=lambda s: (s.chapter, s.name)))


def find_services(names: Sequence[str] | None) -> tuple[Service, ...]:
    """Return the named services (all of them for ``None``) or say which names are unknown."""
    known = services()
    if not names:
        return known
    by_name = {s.name: s for s in known}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"unknown lab service {', '.join(unknown)} (known: {', '.join(by_name)})")
    return tuple(s for s in known if s.name in names)


@cache
def chapters() -> tuple[Chapter, ...]:
    """Every tour chapter, in book order."""
    found = [ch for mod in topic_modules("tour") for ch in getattr(mod, "CHAPTERS", ())]
    return tuple(sorted(found, key=lambda c: c.number))


def topic_chapter(module: ModuleType) -> int | None:
    """The book chapter of the topic package that ``module`` belongs to (``wirelab.tcp.cli``).

    A topic's chapter is the first chapter of its lab services; a topic with no service sets
    ``CHAPTER`` in its module. ``None`` for infrastructure.
    """
    topic = module.__name__.split(".")[1] if module.__name__.count(".") >= 1 else ""
    numbers = [svc.chapter for svc in services() if type(svc).__module__.split(".")[1:2] == [topic]]
    if numbers:
        return min(numbers)
    declared = getattr(module, "CHAPTER", None)
    return declared if isinstance(declared, int) else None
