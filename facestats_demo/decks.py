"""The demo's labels: which (gender, age, ethnicity) image ``index`` of a seed gets, from shuffled decks.

Each consecutive block of images gets one shuffled copy of a deck (seeded per deck and block), so
every block holds every value in the deck's proportions and image ``i``'s labels do not depend on
how many images are drawn. ``MIXES``: ``balanced`` (the reference sets) or ``shifted``
(``facestats demo``'s analysed folder).
"""

from __future__ import annotations

import numpy as np

from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, GENDERS

# Label "decks": each consecutive block of images gets one shuffled deck, so
# every block of DECK length holds every value (age bins weighted to adults).
AGE_DECK_COUNTS: dict[str, int] = {
    "0-2": 2,
    "3-9": 3,
    "10-19": 4,
    "20-29": 7,
    "30-39": 6,
    "40-49": 5,
    "50-59": 4,
    "60-69": 3,
    "70+": 2,
}
# The "shifted" mix (``facestats demo``'s analysed folder): a folder whose class mix differs from the
# balanced reference set, as real folders' do: 60 % male, 60 % white, weighted to young adults.
_SHIFTED_GENDER_DECK: tuple[str, ...] = ("female", "female", "male", "male", "male")
_SHIFTED_ETHNICITY_COUNTS: dict[str, int] = {
    "white": 18, "black": 2, "latino_hispanic": 2, "east_asian": 2, "southeast_asian": 2, "indian": 2,
    "middle_eastern": 2,
}
_SHIFTED_AGE_COUNTS: dict[str, int] = {
    "0-2": 1,
    "3-9": 2,
    "10-19": 3,
    "20-29": 12,
    "30-39": 8,
    "40-49": 4,
    "50-59": 3,
    "60-69": 2,
    "70+": 1,
}
MIXES: tuple[str, ...] = ("balanced", "shifted")
"""Class mixes of a demo set: ``balanced`` (the reference set's) and ``shifted`` (see ``demo_labels``)."""
IMAGE_STREAM = 0
_DECK_STREAM = 1


def _deck_value(seed: int, stream: int, deck: tuple[str, ...], index: int) -> str:
    """Value for image ``index`` from its block's shuffled copy of ``deck``."""
    block, offset = divmod(index, len(deck))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DECK_STREAM, stream, block)))
    return deck[int(rng.permutation(len(deck))[offset])]


def _deck(counts: dict[str, int], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for value in order for _ in range(counts[value]))


def demo_labels(seed: int, index: int, mix: str = "balanced") -> tuple[str, str, str]:
    """Canonical ``(gender, age, ethnicity)`` of demo image ``index``.

    ``balanced``: gender and ethnicity are exactly balanced within every block
    of 2 / 7 images; every block of 36 images holds every age bin, weighted to
    adults. ``shifted``: every block of 5 images is 3 male / 2 female, every
    block of 30 is 60 % white (18) with 2 of each other ethnicity, and every
    block of 36 is weighted to young adults (20-29: 12, 30-39: 8, the other
    bins 1-4 each).
    """
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if mix == "shifted":
        genders = _SHIFTED_GENDER_DECK
        age_deck = _deck(_SHIFTED_AGE_COUNTS, AGE_BINS)
        ethnicities = _deck(_SHIFTED_ETHNICITY_COUNTS, ETHNICITIES)
    else:
        genders, age_deck, ethnicities = GENDERS, _deck(AGE_DECK_COUNTS, AGE_BINS), ETHNICITIES
    return (
        _deck_value(seed, 0, genders, index),
        _deck_value(seed, 1, age_deck, index),
        _deck_value(seed, 2, ethnicities, index),
    )
