"""Revision hashing, numbering, `previous` and pruning."""

from __future__ import annotations

import pytest

from trading_operator.revisions import Revision, RevisionTemplate, next_number, previous_of, to_prune


def rev(n: int) -> Revision:
    return Revision(n, f"r{n}", f"h{n}", RevisionTemplate("img", {}, {}))


@pytest.mark.parametrize(("numbers", "expected"), [([], 1), ([1], 2), ([1, 2, 7], 8), ([3, 1], 4)],
                         ids=["first", "second", "after-gap", "unordered"])
def test_next_number_only_grows(numbers, expected):
    assert next_number([rev(n) for n in numbers]) == expected


@pytest.mark.parametrize(
    ("numbers", "current", "stable", "expected"),
    [([1, 2, 3], 3, 2, 2), ([1, 2, 3], 3, 3, 2), ([1, 3], 3, 3, 1), ([1], 1, 1, None), ([1, 2], 2, 0, 1)],
    ids=["stable-differs", "stable-is-current", "skips-pruned", "nothing-older", "no-stable-yet"],
)
def test_previous(numbers, current, stable, expected):
    found = previous_of([rev(n) for n in numbers], current, stable)
    assert (found.number if found else None) == expected


@pytest.mark.parametrize(
    ("numbers", "limit", "keep", "pruned"),
    [
        ([1, 2, 3], 5, {3}, []),
        ([1, 2, 3, 4, 5], 3, {5}, [2, 1]),
        ([1, 2, 3, 4, 5], 2, {5, 1}, [4, 3, 2]),
        ([1, 2, 3, 4, 5], 1, {5, 3}, [4, 2, 1]),
    ],
    ids=["under-limit", "oldest-go", "stable-kept-even-if-old", "keep-beyond-limit"],
)
def test_prune(numbers, limit, keep, pruned):
    assert [r.number for r in to_prune([rev(n) for n in numbers], limit, keep)] == pruned
