"""How existing rows are split into id ranges for the executors to read."""

from __future__ import annotations

from itertools import pairwise

import pytest

from tagsys.engine.io import _split


@pytest.mark.parametrize(
    ("bounds", "cores", "ranges", "widest"),
    [
        ((1, 1000), 8, 1, 1000),  # too few rows to share
        ((1, 300_000), 8, 6, 50_000),  # one range per core
        ((1, 300_000), 2, 2, 150_000),
        ((1, 13_000_000), 2, 65, 200_000),  # memory per task bounded at any size
        ((7, 7), 2, 1, 1),
    ],
)
def test_ranges_cover_the_ids_once_in_bounded_pieces(
    bounds: tuple[int, int], cores: int, ranges: int, widest: int
) -> None:
    split = _split(bounds, cores)
    assert (len(split), max(hi - lo + 1 for lo, hi in split)) == (ranges, widest)
    assert split[0][0] == bounds[0] and split[-1][1] == bounds[1]
    assert all(a[1] + 1 == b[0] for a, b in pairwise(split))
