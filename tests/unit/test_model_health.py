"""The ModelFallback condition: decided by the planner from what the analysis loop measured of the runtime's
`tradeops_model_serving` gauge (model_health.py), with an Event when the pods fall back and when they recover."""

from __future__ import annotations

import pytest

from tests.unit.test_planner import World
from trading_operator import model_health
from trading_operator.api import TradingSymbolSpec, TradingSymbolStatus
from trading_operator.findings import ModelServingMeasured

SPEC = TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options", "image": "r:1",
                                         "config": {"ml": {"modelPath": "/models/spy.onnx"}}})
PLAIN = TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options", "image": "r:1"})


@pytest.mark.parametrize(("spec", "current", "last", "now", "expected"), [
    (SPEC, 3, None, "2026-01-01T00:00:00Z", 3),
    (SPEC, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", None),
    (SPEC, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z", 3),
    (SPEC, 0, None, "2026-01-01T00:00:00Z", None),
    (PLAIN, 3, None, "2026-01-01T00:00:00Z", None),
    (SPEC.model_copy(update={"replicas": 0}), 3, None, "2026-01-01T00:00:00Z", None),
], ids=["first", "too-soon", "interval-passed", "nothing-runs", "no-model", "scaled-to-zero"])
def test_due(spec, current, last, now, expected):
    assert model_health.due(spec, TradingSymbolStatus(current_revision=current), last, now) == expected


def test_queries_count_and_sum_the_revisions_gauge():
    pods, serving = model_health.queries("trading", "SPY", 4)
    assert pods == 'count(tradeops_model_serving{namespace="trading", revision="4", symbol="SPY"})'
    assert serving == 'sum(tradeops_model_serving{namespace="trading", revision="4", symbol="SPY"})'


def world() -> World:
    w = World()
    w.spec["config"] = {"ml": {"modelPath": "/models/spy.onnx"}}
    w.converge()
    return w


def measured(w: World, pods: float | None, serving: float | None, error: str = "", revision: int = 1) -> None:
    w.findings.append(ModelServingMeasured(revision, pods, serving, f"2026-11-25T00:01:{len(w.events):02d}Z", error))
    w.step()


def test_not_measured_yet_is_unknown_not_false():
    w = world()
    condition = w.condition("ModelFallback")
    assert (condition["status"], condition["reason"]) == ("Unknown", "NoData")


@pytest.mark.parametrize(("pods", "serving", "error", "status", "reason"), [
    (2.0, 2.0, "", "False", "ModelServing"),
    (2.0, 1.0, "", "True", "ModelFallback"),
    (1.0, 0.0, "", "True", "ModelFallback"),
    (None, None, "", "Unknown", "NoData"),
    (0.0, None, "", "Unknown", "NoData"),
    (None, None, "Prometheus unreachable", "Unknown", "NoData"),
], ids=["serving", "one-of-two-fell-back", "fell-back", "no-series", "no-pods", "query-error"])
def test_the_condition_follows_the_measured_gauge(pods, serving, error, status, reason):
    w = world()
    measured(w, pods, serving, error)
    condition = w.condition("ModelFallback")
    assert (condition["status"], condition["reason"]) == (status, reason)
    assert condition["message"].startswith("Revision 1: ")


def test_falling_back_and_recovering_are_events_once_each():
    w = world()
    measured(w, 1.0, 0.0)
    measured(w, 1.0, 0.0)
    assert w.reasons().count("ModelFallback") == 1
    assert "1 of 1 pods fell back" in next(e.message for e in w.events if e.reason == "ModelFallback")
    measured(w, 1.0, 1.0)
    assert w.reasons().count("ModelServing") == 1
    assert w.condition("ModelFallback")["status"] == "False"


def test_a_measurement_of_another_revision_is_not_this_ones():
    w = world()
    measured(w, 1.0, 0.0, revision=7)
    assert w.condition("ModelFallback")["status"] == "Unknown"


def test_no_model_no_condition():
    w = World()
    w.converge()
    assert "ModelFallback" not in {c["type"] for c in w.status["conditions"]}
    w.findings.append(ModelServingMeasured(1, 1.0, 0.0, "2026-11-25T00:01:00Z"))
    w.step()
    assert "ModelFallback" not in {c["type"] for c in w.status["conditions"]}
