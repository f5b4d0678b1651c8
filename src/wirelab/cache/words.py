"""A deterministic list of English-looking words, so sharding needs no ``/usr/share/dict``.

The book's ``hashing.py`` read ``/usr/share/dict/words``, which many systems (this one
included) do not have. What the lesson needs from a dictionary is its *skew*: far more words
start with ``s``, ``c`` or ``p`` than with ``x``, ``y`` or ``z``, which is why sharding by
first letter fills some servers and starves others. So we make words whose first letters
follow the share of English dictionary headwords by initial letter, and whose other letters
follow English letter frequencies. Same seed, same words, on every machine.
"""

from __future__ import annotations

import random
import string

__all__ = ["FIRST_LETTER_WEIGHTS", "make_words"]

_FIRST_SHARES = [
    5.7, 5.9, 9.4, 6.1, 4.0, 4.1, 3.3, 3.7, 3.9, 1.1, 1.0, 3.1, 5.6,
    2.2, 2.5, 7.7, 0.5, 6.0, 11.0, 5.0, 2.9, 1.5, 2.7, 0.1, 0.3, 0.3,
]  # fmt: skip

#: Approximate share (per cent) of English dictionary headwords starting with each letter.
FIRST_LETTER_WEIGHTS: dict[str, float] = dict(
    zip(string.ascii_lowercase, _FIRST_SHARES, strict=True)
)

#: English letter frequencies (per cent), for the letters after the first.
_LETTER_WEIGHTS = [
    8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.8, 4.0, 2.4,
    6.7, 7.5, 1.9, 0.1, 6.0, 6.3, 9.1, 2.8, 1.0, 2.4, 0.15, 2.0, 0.07,
]  # fmt: skip

_LENGTHS = list(range(3, 15))
_LENGTH_WEIGHTS = [3, 6, 9, 12, 13, 13, 12, 10, 8, 6, 4, 3]


def make_words(count: int = 20_000, *, seed: int = 8) -> list[str]:
    """``count`` distinct lower-case words, always the same for the same ``seed``."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    firsts = list(FIRST_LETTER_WEIGHTS)
    first_weights = list(FIRST_LETTER_WEIGHTS.values())
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < count:
        length = rng.choices(_LENGTHS, _LENGTH_WEIGHTS)[0]
        word = rng.choices(firsts, first_weights)[0] + "".join(
            rng.choices(letters, _LETTER_WEIGHTS, k=length - 1)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words
