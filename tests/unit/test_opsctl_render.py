"""opsctl's pure rendering."""

from __future__ import annotations

import datetime

import pytest

from opsctl.render import age, change_summary, history_rows, marks, symbol_row
from trading_operator.revisions import Revision, RevisionTemplate

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [("2026-11-25T11:59:30Z", "30s"), ("2026-11-25T11:50:00Z", "10m"), ("2026-11-25T06:00:00Z", "6h"),
     ("2026-11-20T12:00:00Z", "5d"), (None, "-")],
    ids=["seconds", "minutes", "hours", "days", "unknown"],
)
def test_age(timestamp, expected):
    assert age(timestamp, NOW) == expected


def rev(number: int, image: str = "img:1", batch: int = 256) -> Revision:
    return Revision(number, f"r{number}", f"{number:016d}",
                    RevisionTemplate(image, {}, {"parameters": {"batchSize": batch}}))


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [(None, rev(1), "initial"), (rev(1), rev(2, batch=512), "config.parameters.batchSize 256→512"),
     (rev(1), rev(2, image="img:2"), "image img:1→img:2"), (rev(1), rev(2), "(same as previous)")],
    ids=["first", "config", "image", "identical"],
)
def test_change_summary(previous, current, expected):
    assert change_summary(previous, current) == expected


def test_marks_and_history_rows():
    status = {"currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2}
    assert marks(1, status) == "current,stable"
    assert marks(2, status) == "spec,aborted"
    rows = history_rows([rev(1), rev(2, batch=512)], {1: "2026-11-25T11:00:00Z"}, status)
    assert rows[0][0] == "1"
    assert rows[0][4] == "2026-11-25T11:00:00Z"
    assert rows[1][3] == "config.parameters.batchSize 256→512"
    assert rows[1][4] == "-"


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [({"symbol": "SPY", "market": "equity-options", "replicas": 2}, {"phase": "Ready", "currentRevision": 3,
      "stableRevision": 3, "readyReplicas": 2}, ["SPY", "equity-options", "Ready", "3", "3", "2/2", "on", "no"]),
     ({"symbol": "ES", "market": "futures-options", "tradingEnabled": False, "paused": True}, {},
      ["ES", "futures-options", "Pending", "-", "-", "0/1", "HALTED", "yes"])],
    ids=["ready", "fresh-halted-paused"],
)
def test_symbol_row(spec, status, expected):
    ts = {"metadata": {"name": "x", "namespace": "ns", "creationTimestamp": "2026-11-25T11:59:00Z"},
          "spec": spec, "status": status}
    assert symbol_row(ts, NOW) == ["x", *expected, "60s"]
    assert symbol_row(ts, NOW, with_namespace=True)[0] == "ns"
