"""Chapter 11 tour steps (scrape); they join :data:`wirelab.web.chapter.CHAPTER11`."""

from __future__ import annotations

from wirelab.web.chapter import CHAPTER11

__all__ = ["CHAPTER11"]
