"""Crash loops between ready flaps (`restarts.py`): restarts counted in a window, table-driven over what the
operator sees of a pod from one reconcile to the next."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trading_operator import naming
from trading_operator.api import ContainerRestarts, RolloutSettings
from trading_operator.conditions import Reason
from trading_operator.progress import not_ready
from trading_operator.restarts import crash_loop, recently_restarted, track

SETTINGS = RolloutSettings(crash_loop_restarts=3, crash_loop_window_seconds=600)


def at(seconds: int) -> str:
    return f"2026-11-25T{10 + seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}Z"


def pod(restarts: int, finished: int | None = None, ready: bool = True, revision: int = 2, started: int = 0,
        name: str = "spy-trading-2-a") -> dict[str, Any]:
    last = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": at(finished),
                           "message": "fault injection: exiting with status 1"}} if finished is not None else {}
    return {"metadata": {"name": name, "labels": {naming.REVISION_LABEL: str(revision)}},
            "status": {"startTime": at(started), "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "trading", "restartCount": restarts, "ready": ready,
                                              "state": {"running": {"startedAt": at(finished or 0)}},
                                              "lastState": last}]}}


def looks(*views: tuple[int, dict[str, Any]]) -> list[ContainerRestarts]:
    """The records after the operator looked at one pod at each (time, pod) in turn."""
    records: list[ContainerRestarts] = []
    for now, seen in views:
        records = track(records, [seen], at(now), SETTINGS.crash_loop_window_seconds)
    return records


def verdict(records: list[ContainerRestarts], now: int, pods: list[dict[str, Any]]) -> Reason | None:
    found = crash_loop(records, pods, 2, SETTINGS, at(now))
    return found.reason if found else None


@pytest.mark.parametrize(("views", "now", "expected"), [
    # Ready again after every crash, each restart seen: the third within 10 min is a loop.
    ([(40, pod(1, 30)), (100, pod(2, 90)), (160, pod(3, 150))], 160, Reason.CRASH_LOOP_BACK_OFF),
    ([(40, pod(1, 30)), (100, pod(2, 90))], 100, None),
    # Three restarts, but spread over more than the window: not a loop.
    ([(40, pod(1, 30)), (400, pod(2, 390)), (800, pod(3, 790))], 800, None),
    # The loop ends when the window passes without another restart.
    ([(40, pod(1, 30)), (100, pod(2, 90)), (160, pod(3, 150))], 700, None),
    # First looked at after three restarts of a pod that started within the window: they all count.
    ([(200, pod(3, 190, started=10))], 200, Reason.CRASH_LOOP_BACK_OFF),
    # ... but of a pod that started long before, only the one dated by the container counts.
    ([(2000, pod(3, 1990, started=10))], 2000, None),
    # Two restarts between two looks: the one not seen is dated at the earliest it can have happened.
    ([(40, pod(1, 30)), (300, pod(3, 290))], 300, Reason.CRASH_LOOP_BACK_OFF),
    ([(40, pod(1, 30)), (900, pod(3, 890))], 900, None),
    # Another revision's pod restarting is not this revision's loop.
    ([(200, pod(3, 190, started=10, revision=1))], 200, None),
], ids=["three-in-window", "two", "spread-out", "window-passed", "first-look-young-pod", "first-look-old-pod",
        "missed-one", "missed-one-long-ago", "other-revision"])
def test_crash_loop_counts_restarts_in_the_window(views: list[tuple[int, dict[str, Any]]], now: int,
                                                  expected: Reason | None) -> None:
    records = looks(*views)
    assert verdict(records, now, [views[-1][1]]) == expected


def test_records_change_only_when_a_container_restarts() -> None:
    records = looks((40, pod(1, 30)), (100, pod(2, 90)))
    assert track(records, [pod(2, 90)], at(130), 600) == records  # no status write for a look that saw nothing new
    assert track(records, [], at(130), 600) == []  # the pod is gone: forgotten
    assert track(records, [pod(0)], at(130), 600) == []  # a pod that never restarted needs no record


def test_the_verdict_names_the_pod_the_count_and_the_last_words() -> None:
    seen = pod(3, 150)
    found = crash_loop(looks((40, pod(1, 30)), (100, pod(2, 90)), (160, seen)), [seen], 2, SETTINGS, at(160))
    assert found is not None
    assert found.message == ("pod spy-trading-2-a: container trading restarted 3 times within 600s (limit 3), 3 "
                             "restarts in all; last exit code 1 (Error): fault injection: exiting with status 1")


def test_a_restart_loop_fails_the_revision_although_its_pods_are_ready() -> None:
    seen = pod(3, 150, ready=True)
    deployment = {"metadata": {"generation": 1},
                  "spec": {"template": {"metadata": {"labels": {naming.REVISION_LABEL: "2"}}}},
                  "status": {"observedGeneration": 1, "conditions": []}}
    assert not_ready(deployment, [seen]) is None  # Ready right now: nothing else would see it
    loop = crash_loop(looks((40, pod(1, 30)), (100, pod(2, 90)), (160, seen)), [seen], 2, SETTINGS, at(160))
    found = not_ready(deployment, [seen], loop)
    assert found is not None
    assert found.reason is Reason.CRASH_LOOP_BACK_OFF


@pytest.mark.parametrize(("seen", "now", "expected"), [
    (pod(1, 30), 60, True), (pod(1, 30), 200, False), (pod(0), 60, False)], ids=["just-now", "long-ago", "never"])
def test_recently_restarted(seen: dict[str, Any], now: int, expected: bool) -> None:
    assert recently_restarted(seen, at(now), 60) is expected


@pytest.mark.parametrize("field", [{"crash_loop_restarts": 1}, {"crash_loop_restarts": 21},
                                   {"crash_loop_window_seconds": 59}, {"crash_loop_window_seconds": 3601}],
                         ids=["too-few-restarts", "too-many-restarts", "window-too-short", "window-too-long"])
def test_crash_loop_settings_are_bounded(field: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="crash_loop"):
        RolloutSettings(**field)  # type: ignore[arg-type]
