"""The RegimeChange condition, its Event and the retraining Job: decided by the planner from what the analysis
loop measured of the runtime's regime series (regime_watch.py): once per change, at most one Job per cooldown."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from policies.models import RegimeRetraining, RiskPolicySpec
from tests.unit.test_planner import World
from trading_operator import regime_watch
from trading_operator.api import TradingSymbolSpec, TradingSymbolStatus
from trading_operator.findings import RegimeMeasured
from trading_operator.model_resolution import Lookup
from trading_operator.plans import CreateObject, Observed
from trading_operator.timestamps import parse_time

SPEC = TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options", "image": "r:1",
                                         "config": {"ml": {"regimeDetection": True}}})
PLAIN = TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options", "image": "r:1"})
MODEL = "tradeops-meta-spy"
TRACKING = "http://mlflow.data:5000"
START = parse_time("2026-11-25T00:00:00Z").timestamp()


@pytest.mark.parametrize(("spec", "current", "last", "now", "expected"), [
    (SPEC, 3, None, "2026-01-01T00:00:00Z", 3),
    (SPEC, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", None),
    (SPEC, 3, "2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z", 3),
    (SPEC, 0, None, "2026-01-01T00:00:00Z", None),
    (PLAIN, 3, None, "2026-01-01T00:00:00Z", None),
    (SPEC.model_copy(update={"replicas": 0}), 3, None, "2026-01-01T00:00:00Z", None),
], ids=["first", "too-soon", "interval-passed", "nothing-runs", "no-detection", "scaled-to-zero"])
def test_due(spec, current, last, now, expected):
    assert regime_watch.due(spec, TradingSymbolStatus(current_revision=current), last, now) == expected


def test_queries_count_and_sum_the_watching_gauge_and_take_the_latest_change():
    pods, watching, last = regime_watch.queries("trading", "SPY", 4)
    scope = 'namespace="trading", revision="4", symbol="SPY"'
    assert pods == f"count(tradeops_regime_watching{{{scope}}})"
    assert watching == f"sum(tradeops_regime_watching{{{scope}}})"
    assert last == f"max(tradeops_regime_last_change_timestamp_seconds{{{scope}}})"


class RegimeWorld(World):
    """A symbol with regime detection, a registered model and a tracking server; the clock in seconds."""

    def __init__(self, retraining: RegimeRetraining | None = None, model: bool = True) -> None:
        super().__init__()
        self.spec["config"] = {"ml": {"regimeDetection": True, "regimeCooldownSeconds": 1800}}
        if model:
            self.spec["model"] = {"name": MODEL, "alias": "champion"}
        risk = RiskPolicySpec(regime_retraining=retraining or RegimeRetraining(enabled=True, cooldown_seconds=3600))
        self.policies = dataclasses.replace(self.policies, risk={"default": risk})
        self.seconds = 0.0
        self.created_jobs: list[dict[str, Any]] = []

    def observe(self) -> Observed:
        observed = super().observe()
        now = f"{_iso(START + self.seconds)}"
        lookup = Lookup(MODEL, "champion", now, version=3, uri=f"{TRACKING}/model.onnx")
        return dataclasses.replace(observed, now=now, model=lookup, tracking_uri=TRACKING, jobs=self.created_jobs)

    def measured(self, pods: float | None = 1.0, watching: float | None = 1.0, last: float | None = None,
                 error: str = "") -> None:
        self.findings.append(RegimeMeasured(self.status.get("currentRevision", 1), pods, watching, last,
                                            _iso(START + self.seconds), error))
        self.created_jobs += [a.manifest for a in self.step()
                              if isinstance(a, CreateObject) and a.manifest["kind"] == "Job"]

    def jobs(self) -> list[dict[str, Any]]:
        return self.created_jobs


def _iso(ts: float) -> str:
    from trading_operator.retraining import iso

    return iso(ts)


def world(**kwargs: Any) -> RegimeWorld:
    w = RegimeWorld(**kwargs)
    w.converge()
    return w


def test_not_measured_yet_is_unknown_not_false():
    w = world()
    condition = w.condition("RegimeChange")
    assert (condition["status"], condition["reason"]) == ("Unknown", "NoData")


def test_no_detection_no_condition():
    w = World()
    w.converge()
    assert "RegimeChange" not in {c["type"] for c in w.status["conditions"]}


@pytest.mark.parametrize(("pods", "watching", "error", "status", "reason"), [
    (2.0, 2.0, "", "False", "RegimeStable"),
    (2.0, 1.0, "", "Unknown", "RegimeLearning"),
    (None, None, "", "Unknown", "NoData"),
    (None, None, "Prometheus unreachable", "Unknown", "NoData"),
], ids=["watching", "one-learning", "no-series", "query-error"])
def test_the_condition_follows_the_measured_detectors(pods, watching, error, status, reason):
    w = world()
    w.measured(pods, watching, error=error)
    condition = w.condition("RegimeChange")
    assert (condition["status"], condition["reason"]) == (status, reason)
    assert condition["message"].startswith("Revision 1: ")
    assert w.jobs() == []


def test_a_change_is_one_event_and_one_job_however_often_it_is_measured():
    w = world()
    change = START + 5.0
    w.seconds = 30.0
    w.measured(2.0, 0.0, change)
    w.seconds = 60.0
    w.measured(2.0, 0.0, change + 20.0)  # the other replica saw it two blocks later: the same change
    w.seconds = 90.0
    w.measured(2.0, 1.0, change)
    assert w.reasons().count("RegimeChanged") == 1
    assert w.reasons().count("RetrainingRequested") == 1
    [job] = w.jobs()
    assert job["metadata"]["name"] == f"spy-retrain-{int(change)}"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "modelops", "train"]
    assert container["args"][:6] == ["--symbol", "SPY", "--market", "equity-options", "--model-name", MODEL]
    assert container["args"][6:8] == ["--trigger", f"regime-change@{_iso(change)}"]
    assert container["args"][8:] == ["--synthetic-days", "8"]
    assert container["env"] == [{"name": "MLFLOW_TRACKING_URI", "value": TRACKING}]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert "tradeops.io/owner" not in str(job["spec"]["template"]["metadata"]["labels"])
    condition = w.condition("RegimeChange")
    assert (condition["status"], condition["reason"]) == ("True", "RegimeChanged")
    assert f"retraining Job spy-retrain-{int(change)}" in condition["message"]
    regime = w.status["regime"]
    assert regime["lastChangeAt"] == _iso(change)
    assert regime["retraining"]["job"] == f"spy-retrain-{int(change)}"


def test_a_second_change_within_the_cooldown_is_announced_but_not_retrained_on():
    w = world()
    w.seconds = 30.0
    w.measured(1.0, 1.0, START + 10.0)
    w.seconds = 1230.0  # 20 minutes later: a new change, the policy's hour not yet over
    w.measured(1.0, 1.0, START + 1210.0)
    assert w.reasons().count("RegimeChanged") == 2
    assert w.reasons().count("RetrainingRequested") == 1
    skipped = next(e for e in w.events if e.reason == "RetrainingSkipped")
    assert "allows one per 3600 s" in skipped.message
    assert len(w.jobs()) == 1
    w.seconds = 3700.0  # past the cooldown: the next change retrains again
    w.measured(1.0, 1.0, START + 3690.0)
    assert w.reasons().count("RetrainingRequested") == 2
    assert len(w.jobs()) == 2


def test_the_condition_turns_false_when_the_runtime_stops_tightening():
    w = world()
    w.seconds = 30.0
    w.measured(1.0, 1.0, START + 10.0)
    assert w.condition("RegimeChange")["status"] == "True"
    w.seconds = 1900.0  # past regimeCooldownSeconds (1800) after the change
    w.measured(1.0, 1.0, START + 10.0)
    condition = w.condition("RegimeChange")
    assert (condition["status"], condition["reason"]) == ("False", "RegimeStable")
    assert w.reasons().count("RegimeChanged") == 1


@pytest.mark.parametrize(("retraining", "model", "skipped"), [
    (RegimeRetraining(enabled=False), True, False),
    (RegimeRetraining(enabled=True), False, True),
], ids=["policy-off", "no-model"])
def test_no_job_without_the_policy_or_a_model(retraining, model, skipped):
    w = world(retraining=retraining, model=model)
    w.seconds = 30.0
    w.measured(1.0, 1.0, START + 10.0)
    assert w.reasons().count("RegimeChanged") == 1
    assert w.jobs() == []
    assert ("RetrainingSkipped" in w.reasons()) is skipped


def _ended(job: dict[str, Any], kind: str, reason: str = "", message: str = "") -> None:
    """What the Job controller writes when a Job ends."""
    job["status"] = {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}


@pytest.mark.parametrize(("kind", "event", "outcome"), [
    ("Complete", "RetrainingSucceeded", "Succeeded"),
    ("Failed", "RetrainingFailed", "Failed"),
], ids=["complete", "failed"])
def test_how_the_retraining_job_ended_is_announced_once(kind, event, outcome):
    w = world()
    w.seconds = 30.0
    w.measured(1.0, 1.0, START + 10.0)
    [job] = w.jobs()
    w.step()
    assert event not in w.reasons()  # still running
    _ended(job, kind, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    w.step()
    w.step()
    assert w.reasons().count(event) == 1
    assert w.status["regime"]["retraining"]["outcome"] == outcome
    message = next(e.message for e in w.events if e.reason == event)
    assert job["metadata"]["name"] in message
    if kind == "Failed":
        assert "BackoffLimitExceeded" in message
