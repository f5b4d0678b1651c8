"""Chapter 11's tour chapter object; its steps live in one module per part of the chapter."""

from __future__ import annotations

from wirelab.lab.tour import Chapter

__all__ = ["CHAPTER11"]

CHAPTER11 = Chapter(
    11,
    "The World Wide Web",
    "A payments app attacked in a real browser (XSS, CSRF) and hardened; the same app on "
    "Django; scrapers and crawlers, static and JavaScript-aware.",
)
