"""Drain decisions and manifest comparison."""

from __future__ import annotations

import pytest

from trading_operator.diffing import changed_fields, differences, is_subset, quantity_value
from trading_operator.drain import DrainStep, drain_decision


@pytest.mark.parametrize(
    ("positions", "elapsed", "timeout", "step"),
    [(0, 1, 120, DrainStep.DONE), (3, 1, 120, DrainStep.WAIT), (3, 121, 120, DrainStep.TIMED_OUT),
     (None, 5, 120, DrainStep.WAIT), (None, 200, 120, DrainStep.TIMED_OUT), (0, 500, 120, DrainStep.DONE)],
    ids=["flat", "open", "open-timeout", "unknown-waits", "unknown-timeout", "flat-late"],
)
def test_drain_decision(positions, elapsed, timeout, step):
    assert drain_decision(positions, elapsed, timeout).step is step


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("1000m", 1), ("250m", 0.25), ("1Gi", 2**30),
                                              ("512Mi", 2**29), ("abc", None)])
def test_quantities(text, value):
    result = quantity_value(text)
    assert (float(result) if result is not None else None) == value


@pytest.mark.parametrize(
    ("want", "have", "expected"),
    [({"a": 1}, {"a": 1, "b": 2}, True), ({"a": 1}, {"a": 2}, False), ({"a": [1, 2]}, {"a": [1]}, False),
     ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True), ({"cpu": "1"}, {"cpu": "1000m"}, True),
     ({"a": {"b": 1}}, {}, False)],
    ids=["extra-keys-ok", "value-differs", "list-length", "list-item-defaults", "quantity", "missing"],
)
def test_is_subset(want, have, expected):
    assert is_subset(want, have) is expected


def test_differences_and_changes_name_paths():
    assert differences({"spec": {"replicas": 1}}, {"spec": {"replicas": 4}}) == ["spec.replicas: 4 (want 1)"]
    assert changed_fields({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}}) == ["a.b 1→2", "a.c None→3"]
