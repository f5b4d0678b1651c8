"""Chapter 11 in the tour: the attacks on the payments app, the Django app, then the scrapers.

Steps are added by :mod:`wirelab.web.tour_bank`, :mod:`wirelab.web.tour_django` and
:mod:`wirelab.web.tour_scrape`, in that order (the order of the imports below).
"""

from __future__ import annotations

from wirelab.web import tour_bank, tour_django, tour_scrape
from wirelab.web.chapter import CHAPTER11

__all__ = ["CHAPTERS"]

#: Imported for the steps they add to :data:`CHAPTER11`.
STEP_MODULES = (tour_bank, tour_django, tour_scrape)

CHAPTERS = (CHAPTER11,)
