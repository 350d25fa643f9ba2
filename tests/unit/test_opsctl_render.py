"""opsctl's pure rendering: table rows from API objects, change summaries between revisions, ages, and
the writers (literal text, no trailing blanks, JSON/YAML)."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pytest
import yaml
from rich.console import Console

from opsctl.render import (
    age,
    change_summary,
    condition_rows,
    dump,
    event_rows,
    history_rows,
    image_change,
    marks,
    print_table,
    short_image,
    symbol_row,
    symbol_summary,
)
from trading_operator.revisions import Revision, RevisionTemplate

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [("2026-11-25T11:59:30Z", "30s"), ("2026-11-25T12:00:00Z", "0s"), ("2026-11-25T12:00:30Z", "0s"),
     ("2026-11-25T11:58:01Z", "119s"), ("2026-11-25T11:58:00Z", "2m"), ("2026-11-25T11:50:00Z", "10m"),
     ("2026-11-25T10:00:00Z", "2h"), ("2026-11-25T06:00:00Z", "6h"), ("2026-11-23T12:00:00Z", "2d"),
     ("2026-11-20T12:00:00Z", "5d"), (None, "-"), ("", "-")],
    ids=["seconds", "now", "clock-skew-future", "just-under-2m", "2m", "minutes", "2h", "hours", "2d", "days",
         "unknown", "empty"],
)
def test_age(timestamp, expected):
    assert age(timestamp, NOW) == expected


def rev(number: int, image: str = "img:1", batch: int = 256, resources: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> Revision:
    config = {"parameters": {"batchSize": batch, **(extra or {})}}
    return Revision(number, f"r{number}", f"{number:016d}", RevisionTemplate(image, resources or RESOURCES, config))


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [(None, rev(1), "initial"),
     (rev(1), rev(2, batch=512), "config.parameters.batchSize 256→512"),
     (rev(1), rev(2, image="img:2"), "image :1→:2"),
     (rev(1, image="ghcr.io/t/rt:0.1.0"), rev(2, image="ghcr.io/t/rt:0.2.0"), "image :0.1.0→:0.2.0"),
     (rev(1, image="localhost:5000/rt:1"), rev(2, image="localhost:5000/rt:2"), "image :1→:2"),
     (rev(1, image=f"rt@{DIGEST_A}"), rev(2, image=f"rt@{DIGEST_B}"),
      "image @sha256:aaaaaaaaaaaa→@sha256:bbbbbbbbbbbb"),
     (rev(1, image="a/rt:1"), rev(2, image="b/rt:1"), "image a/rt:1→b/rt:1"),
     (rev(1, image="rt"), rev(2, image="rt:2"), "image rt→rt:2"),
     (rev(1), rev(2, extra={"workers": 4}), "config.parameters.workers None→4"),
     (rev(1), rev(2, resources={**RESOURCES, "limits": {"cpu": "2", "memory": "512Mi"}}),
      "resources.limits.cpu 1→2"),
     (rev(1), rev(2, image="img:2", batch=512), "image :1→:2, config.parameters.batchSize 256→512"),
     (rev(1), rev(2, image="img:2", batch=512, extra={"a": 1, "b": 2}),
      "image :1→:2, config.parameters.a None→1, config.parameters.b None→2 (+1 more)"),
     (rev(1), rev(2), "(same as previous)")],
    ids=["first", "config", "image-tag", "image-registry-path", "registry-with-port", "image-digest",
         "image-repository", "untagged", "config-added", "resources", "image-and-config", "over-the-limit",
         "identical"],
)
def test_change_summary(previous, current, expected):
    assert change_summary(previous, current) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [("rt:1", "rt:1"), (f"ghcr.io/t/rt@{DIGEST_A}", "ghcr.io/t/rt@sha256:aaaaaaaaaaaa"), ("rt", "rt")],
    ids=["tag", "digest", "bare"],
)
def test_short_image(image, expected):
    assert short_image(image) == expected


def test_image_change_across_repositories_keeps_both_references():
    assert image_change(f"a/rt@{DIGEST_A}", "b/rt:2") == "image a/rt@sha256:aaaaaaaaaaaa→b/rt:2"


@pytest.mark.parametrize(
    ("number", "status", "expected"),
    [(1, {"currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2}, "current,stable"),
     (2, {"currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2}, "update,aborted"),
     (3, {"currentRevision": 3, "stableRevision": 3, "updateRevision": 3, "abortedRevision": None},
      "current,stable,update"),
     (4, {"currentRevision": 3}, ""), (1, {}, "")],
    ids=["running-and-stable", "aborted-spec-revision", "all-but-aborted", "unmarked", "no-status"],
)
def test_marks(number, status, expected):
    assert marks(number, status) == expected


def test_history_rows_are_oldest_first_with_changes_relative_to_the_previous_stored_revision():
    status = {"currentRevision": 1, "stableRevision": 1, "updateRevision": 4, "abortedRevision": 4}
    # Revision 2 and 3 were pruned; 4 arrives first from the API.
    rows = history_rows([rev(4, image=f"img@{DIGEST_B}", batch=512), rev(1)], {1: "2026-11-25T11:00:00Z"}, status)
    assert rows == [
        ["1", "0000000000", "img:1", "initial", "2026-11-25T11:00:00Z", "current,stable"],
        ["4", "0000000000", "img@sha256:bbbbbbbbbbbb", "image :1→@sha256:bbbbbbbbbbbb, config.parameters.batchSize "
         "256→512", "-", "update,aborted"],
    ]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [({"symbol": "SPY", "market": "equity-options", "replicas": 2}, {"phase": "Ready", "currentRevision": 3,
      "stableRevision": 3, "readyReplicas": 2}, ["SPY", "equity-options", "Ready", "3", "3", "2/2", "on", "no"]),
     ({"symbol": "ES", "market": "futures-options", "tradingEnabled": False, "paused": True}, {},
      ["ES", "futures-options", "Pending", "-", "-", "0/1", "HALTED", "yes"]),
     ({"symbol": "QQQ", "market": "index-options", "replicas": 3}, {"phase": "Degraded", "currentRevision": 4,
      "stableRevision": 2, "readyReplicas": 1}, ["QQQ", "index-options", "Degraded", "4", "2", "1/3", "on", "no"]),
     ({"symbol": "SPY", "market": "equity-options", "replicas": 0}, {"phase": "Ready"},
      ["SPY", "equity-options", "Ready", "-", "-", "0/0", "on", "no"])],
    ids=["ready", "fresh-halted-paused", "degraded-mid-rollout", "scaled-to-zero"],
)
def test_symbol_row(spec, status, expected):
    ts = {"metadata": {"name": "x", "namespace": "ns", "creationTimestamp": "2026-11-25T11:59:00Z"},
          "spec": spec, "status": status}
    assert symbol_row(ts, NOW) == ["x", *expected, "60s"]
    assert symbol_row(ts, NOW, with_namespace=True) == ["ns", "x", *expected, "60s"]


def test_symbol_row_without_status_or_timestamp():
    assert symbol_row({"metadata": {"name": "x"}, "spec": {"symbol": "SPY", "market": "equity-options"}}, NOW) == \
        ["x", "SPY", "equity-options", "Pending", "-", "-", "0/1", "on", "no", "-"]


def test_symbol_summary():
    ts = {"metadata": {"name": "spy", "namespace": "ns"}, "spec": {"symbol": "SPY", "market": "equity-options"},
          "status": {"phase": "Ready", "currentRevision": 2, "stableRevision": 2, "updateRevision": 2}}
    assert symbol_summary(ts) == {
        "name": "spy", "namespace": "ns", "symbol": "SPY", "market": "equity-options", "phase": "Ready",
        "currentRevision": 2, "stableRevision": 2, "updateRevision": 2, "abortedRevision": None,
        "readyReplicas": 0, "replicas": 1, "tradingEnabled": True, "paused": False}


@pytest.mark.parametrize(
    ("status", "expected"),
    [({"conditions": [{"type": "Ready", "status": "False", "reason": "RolledBack", "message": "2 → 1",
                       "lastTransitionTime": "2026-11-25T11:00:00Z"}]},
      [["Ready", "False", "RolledBack", "2 → 1", "2026-11-25T11:00:00Z"]]),
     ({"conditions": [{"type": "SpecValid", "status": "True"}]}, [["SpecValid", "True", "", "", ""]]),
     ({}, []), ({"conditions": None}, [])],
    ids=["full", "sparse", "no-conditions", "null-conditions"],
)
def test_condition_rows(status, expected):
    assert condition_rows(status) == expected


@pytest.mark.parametrize(
    ("event", "time"),
    [({"lastTimestamp": "2026-11-25T11:00:00Z", "eventTime": "2026-11-25T10:00:00.000000Z"}, "2026-11-25T11:00:00Z"),
     ({"lastTimestamp": None, "eventTime": "2026-11-25T10:00:00.000000Z"}, "2026-11-25T10:00:00.000000Z"),
     ({"firstTimestamp": "2026-11-25T09:00:00Z"}, "2026-11-25T09:00:00Z"),
     ({"metadata": {"creationTimestamp": "2026-11-25T08:00:00Z"}}, "2026-11-25T08:00:00Z"),
     ({}, "")],
    ids=["last-timestamp", "event-time", "first-timestamp", "created", "none"],
)
def test_event_rows_time(event, time):
    assert event_rows([{"type": "Normal", "reason": "R", "message": "m", **event}]) == [[time, "Normal", "R", "m"]]


def test_event_rows_keep_the_last_ones():
    events = [{"lastTimestamp": f"2026-11-25T11:00:{i:02d}Z", "reason": f"R{i}"} for i in range(15)]
    assert [row[2] for row in event_rows(events, limit=3)] == ["R12", "R13", "R14"]
    assert event_rows(events, limit=0) == []


def render_table(columns, rows, title=None) -> str:
    buffer = io.StringIO()
    print_table(Console(file=buffer, width=120, highlight=False, emoji=False), columns, rows, title)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "cell",
    ["[/bold] closes nothing", "[red]red[/red]", ":smile: emoji code", "[link=http://x]y[/link]", "a\\[b]"],
    ids=["stray-closing-tag", "style-tag", "emoji", "link", "escaped"],
)
def test_print_table_prints_cells_literally(cell):
    text = render_table(["TYPE", "MESSAGE"], [["Ready", cell]])
    assert text.splitlines()[1].split(None, 1) == ["Ready", cell]


def test_print_table_has_no_trailing_blanks():
    text = render_table(["A", "LONGER"], [["x", "y"], ["long value", "z"]], title="Title")
    assert text.splitlines() == ["Title", "A           LONGER", "x           y", "long value  z"]


@pytest.mark.parametrize("output", ["json", "yaml"], ids=["json", "yaml"])
def test_dump_round_trips(output):
    data = [{"name": "spy", "change": "batchSize 256→512", "n": 2, "none": None, "flag": True}]
    text = dump(data, output)
    assert (json.loads(text) if output == "json" else yaml.safe_load(text)) == data
    assert "→" in text  # kept readable, not escaped
