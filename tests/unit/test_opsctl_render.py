"""opsctl's pure core: table rows from API objects, change summaries between revisions, progress lines
(analysis step x of n, the latest measurement, time left, conditions that hold) and the verbs' decisions
(what a rollback, a switch or a rollout request writes, or why it is refused)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from opsctl.errors import ExitCode, OpsctlError
from opsctl.progress import RunPlan, analysis_line, held_conditions, judged, seconds_left, symbol_line
from opsctl.render import (
    change_summary,
    condition_rows,
    event_rows,
    history_rows,
    image_change,
    marks,
    phase_of,
    resource_name,
    short_image,
    symbol_row,
    true_conditions,
)
from opsctl.rollout_cli import plan_abort, plan_promote, plan_restart, plan_retry
from opsctl.symbols_cli import (
    HALT_REASON_ANNOTATION,
    Described,
    Switch,
    describe_text,
    halt_switch,
    plan_rollback,
    plan_switch,
)
from trading_operator import naming
from trading_operator.revisions import Revision, RevisionTemplate
from trading_operator.user_requests import RequestPayload, decode, encode

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}


def rev(number: int, image: str = "img:1", batch: int = 256, resources: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None) -> Revision:
    config = {"parameters": {"batchSize": batch, **(extra or {})}}
    return Revision(number, f"r{number}", f"{number:016d}", RevisionTemplate(image, resources or RESOURCES, config))


def ts(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "spy", "namespace": "ns", "creationTimestamp": "2026-11-25T11:59:00Z", **meta},
            "spec": {"symbol": "SPY", "market": "equity-options", "image": "img:1", **(spec or {})},
            "status": status or {}}


# rows --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [(None, rev(1, image="ghcr.io/t/rt:0.1.0"), "initial (image :0.1.0)"),
     (rev(1), rev(2, batch=512), "config.parameters.batchSize 256→512"),
     (rev(1), rev(2, image="img:2"), "image :1→:2"),
     (rev(1, image="localhost:5000/rt:1"), rev(2, image="localhost:5000/rt:2"), "image :1→:2"),
     (rev(1, image=f"rt@{DIGEST_A}"), rev(2, image=f"rt@{DIGEST_B}"),
      "image @sha256:aaaaaaaaaaaa→@sha256:bbbbbbbbbbbb"),
     (rev(1, image="a/rt:1"), rev(2, image="b/rt:1"), "image a/rt:1→b/rt:1"),
     (rev(1), rev(2, resources={**RESOURCES, "limits": {"cpu": "2", "memory": "512Mi"}}),
      "resources.limits.cpu 1→2"),
     (rev(1), rev(2, image="img:2", batch=512, extra={"a": 1, "b": 2}),
      "image :1→:2, config.parameters.a None→1, config.parameters.b None→2 (+1 more)"),
     (rev(1), rev(2), "(same as previous)")],
    ids=["first", "config", "image-tag", "registry-with-port", "image-digest", "image-repository", "resources",
         "over-the-limit", "identical"],
)
def test_change_summary(previous, current, expected):
    assert change_summary(previous, current) == expected


def test_short_image_and_image_change():
    assert short_image(f"ghcr.io/t/rt@{DIGEST_A}") == "ghcr.io/t/rt@sha256:aaaaaaaaaaaa"
    assert short_image("rt:1") == "rt:1"
    assert image_change(f"a/rt@{DIGEST_A}", "b/rt:2") == "image a/rt@sha256:aaaaaaaaaaaa→b/rt:2"


@pytest.mark.parametrize(
    ("number", "status", "expected"),
    [(1, {"currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2}, "current,stable"),
     (2, {"currentRevision": 1, "stableRevision": 1, "updateRevision": 2, "abortedRevision": 2}, "update,aborted"),
     (4, {"currentRevision": 3}, "")],
    ids=["running-and-stable", "aborted-spec-revision", "unmarked"],
)
def test_marks(number, status, expected):
    assert marks(number, status) == expected


def test_history_rows_relative_ages_and_wide_columns():
    status = {"currentRevision": 1, "stableRevision": 1, "updateRevision": 4, "abortedRevision": 4}
    revisions = [rev(4, image=f"img@{DIGEST_B}", batch=512), rev(1)]  # 2 and 3 pruned; 4 came first
    created = {1: "2026-11-25T11:00:00Z", 4: None}
    assert history_rows(revisions, created, status, NOW) == [
        ["1", "60m", "current,stable", "initial (image :1)"],
        ["4", "<unknown>", "update,aborted", "image :1→@sha256:bbbbbbbbbbbb, config.parameters.batchSize 256→512"]]
    assert history_rows(revisions, created, status, NOW, wide=True)[1][:3] == \
        ["4", "0000000000", "img@sha256:bbbbbbbbbbbb"]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [({"replicas": 2}, {"phase": "Ready", "currentRevision": 3, "stableRevision": 3, "readyReplicas": 2},
      ["SPY", "Ready", "3", "3", "2", "on"]),
     ({"tradingEnabled": False, "paused": True}, {}, ["SPY", "Pending", "-", "-", "0", "HALTED"]),
     ({"replicas": 3}, {"phase": "Degraded", "currentRevision": 4, "stableRevision": 2, "readyReplicas": 1},
      ["SPY", "Degraded", "4", "2", "1", "on"])],
    ids=["ready", "fresh-halted", "degraded-mid-rollout"],
)
def test_symbol_row_has_kubectls_columns_and_trading(spec, status, expected):
    assert symbol_row(ts(spec, status), NOW) == ["spy", *expected, "60s"]
    assert symbol_row(ts(spec, status), NOW, with_namespace=True)[0] == "ns"


def test_wide_row_adds_market_update_desired_paused_conditions_and_image():
    status = {"phase": "Terminating", "updateRevision": 5, "readyReplicas": 1, "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Draining", "status": "True", "reason": "DrainInProgress"}]}
    row = symbol_row(ts({"replicas": 2, "paused": True, "image": f"rt@{DIGEST_A}"}, status), NOW, wide=True)
    assert row[8:] == ["equity-options", "5", "2", "yes", "Draining", "rt@sha256:aaaaaaaaaaaa"]


def test_phase_is_terminating_once_deletion_began():
    assert phase_of(ts(status={"phase": "Ready"}, deletionTimestamp="2026-11-25T11:59:59Z")) == "Terminating"
    assert phase_of(ts(status={"phase": "Ready"})) == "Ready"
    assert true_conditions({}) == "-"


def test_conditions_are_shown_generically_with_ages():
    status = {"conditions": [
        {"type": "Draining", "status": "True", "reason": "DrainInProgress", "message": "3 open positions, 90s left",
         "lastTransitionTime": "2026-11-25T11:59:30Z"},
        {"type": "SomethingNew", "status": "Unknown"}]}
    assert condition_rows(status, NOW) == [["Draining", "True", "DrainInProgress", "30s", "3 open positions, 90s left"],
                                           ["SomethingNew", "Unknown", "", "<unknown>", ""]]


def test_event_rows_keep_the_last_ones_with_repeat_counts():
    events = [{"lastTimestamp": f"2026-11-25T11:59:{i:02d}Z", "reason": f"R{i}", "type": "Normal", "message": "m",
               "count": 1 + (i == 14)} for i in range(15)]
    rows = event_rows(events, NOW, limit=3)
    assert [row[1] for row in rows] == ["R12", "R13", "R14"]
    assert rows[-1][2] == "46s (x2)"


def test_resource_names_are_kubectls():
    assert resource_name({"apiVersion": "trading.tradeops.io/v1alpha1", "kind": "TradingSymbol",
                          "metadata": {"name": "spy"}}) == "tradingsymbol.trading.tradeops.io/spy"
    assert resource_name({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                          "metadata": {"name": "spy-1"}}) == "controllerrevision.apps/spy-1"
    assert resource_name({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}}) == "event/e"


# progress ----------------------------------------------------------------------------------------------------

PLAN = RunPlan(count=5, interval_seconds=2, initial_delay_seconds=4)
RUN = {"revision": 3, "kind": "Rollout", "phase": "Running", "startedAt": "2026-11-25T11:59:50Z",
       "tallies": [{"metric": "latency", "successful": 2, "failed": 1},
                   {"metric": "errors", "successful": 2, "inconclusive": 4}],
       "measurements": [{"metric": "errors", "phase": "Successful", "value": 0.001, "message": "0.001 below 0.01"}]}


def test_judged_is_the_slowest_metrics_count_and_no_data_does_not_count():
    assert judged(RUN) == 2
    assert judged({"tallies": []}) == 0


@pytest.mark.parametrize(("run", "left"), [
    (RUN, 6.0),
    ({**RUN, "tallies": []}, 4.0 - 4.0 + 10.0),  # started 10 s ago: the 4 s initial delay is over
    ({**RUN, "tallies": [], "startedAt": "2026-11-25T11:59:59Z"}, 3.0 + 10.0),
    ({**RUN, "tallies": [{"metric": "latency", "successful": 9}]}, 0.0)],
    ids=["two-of-five", "none-yet-delay-over", "none-yet-in-delay", "all-done"])
def test_seconds_left(run, left):
    assert seconds_left(run, PLAN, NOW) == pytest.approx(left)


def test_analysis_line_shows_step_latest_and_time_left():
    assert analysis_line(RUN, PLAN, NOW) == ("Rollout analysis of revision 3: Running, measurement 2 of 5, latest "
                                             "errors 0.001 below 0.01 (Successful), about 6s left")
    assert analysis_line({**RUN, "measurements": []}, None, NOW) == \
        "Rollout analysis of revision 3: Running, no measurement yet"
    assert analysis_line({**RUN, "phase": "Failed", "message": "latency: 0.12 s not below 0.05 s"}, PLAN, NOW) == \
        "Rollout analysis of revision 3: Failed (latency: 0.12 s not below 0.05 s)"


def test_symbol_line_carries_the_run_and_every_condition_that_holds():
    status = {"phase": "Terminating", "currentRevision": 3, "stableRevision": 2, "updateRevision": 3,
              "readyReplicas": 1, "analysis": RUN,
              "conditions": [{"type": "Ready", "status": "True", "message": "ok"},
                             {"type": "Draining", "status": "True", "reason": "DrainInProgress",
                              "message": "3 open positions, 90s left"},
                             {"type": "Degraded", "status": "False", "message": "not shown"}]}
    line = symbol_line(ts({"replicas": 2}, status), PLAN, NOW)
    assert line == ("spy: Terminating, revision 3 (stable 2), 1/2 ready; Rollout analysis of revision 3: Running, "
                    "measurement 2 of 5, latest errors 0.001 below 0.01 (Successful), about 6s left; "
                    "Draining: 3 open positions, 90s left")
    assert held_conditions({"conditions": [{"type": "X", "status": "True", "reason": "OnlyReason"}]}) == \
        ["X: OnlyReason"]


# decisions ---------------------------------------------------------------------------------------------------

REVISIONS = [rev(1), rev(2), rev(3)]


@pytest.mark.parametrize(("status", "to", "expected"), [
    ({"currentRevision": 3, "stableRevision": 2}, None, 2),
    ({"currentRevision": 3, "stableRevision": 3}, None, 2),
    ({"currentRevision": 3, "stableRevision": 1}, None, 1),
    ({"currentRevision": 3}, 1, 1)],
    ids=["stable", "newest-older", "stable-older", "explicit"])
def test_plan_rollback_writes_a_request_bound_to_the_running_revision(status, to, expected):
    request = plan_rollback(ts(status=status), REVISIONS, to)
    sent = decode(request.patch["metadata"]["annotations"][naming.ROLLBACK_ANNOTATION])
    assert isinstance(sent, RequestPayload)
    assert (sent.revision, sent.to_revision, sent.generation, sent.force) == (3, expected, 1, False)
    assert sent.id.startswith("rollback-")
    assert plan_rollback(ts(status=status), REVISIONS, to).payload.id != sent.id  # every request is new


def test_rollback_to_the_aborted_revision_needs_force():
    aborted = {"currentRevision": 2, "stableRevision": 2, "updateRevision": 3, "abortedRevision": 3}
    with pytest.raises(OpsctlError, match="--force runs it again, with a fresh analysis") as refused:
        plan_rollback(ts(status=aborted), REVISIONS, 3)
    assert refused.value.code is ExitCode.REJECTED
    forced = plan_rollback(ts(status=aborted), REVISIONS, 3, force=True).payload
    assert (forced.revision, forced.to_revision, forced.force) == (2, 3, True)
    # --force on a revision that is not aborted changes nothing: it is a plain rollback.
    assert plan_rollback(ts(status=aborted), REVISIONS, 1, force=True).payload.force is False


def test_rollback_to_an_older_failed_revision_needs_force():
    moved_on = {"currentRevision": 3, "stableRevision": 3, "updateRevision": 3,
                "failedRevisions": [{"revision": 2, "reason": "CrashLoopBackOff: pod spy-trading-2-a",
                                     "time": "2026-11-25T10:00:00Z"}]}
    with pytest.raises(OpsctlError, match=r"revision 2 of spy is marked failed "
                       r"\(CrashLoopBackOff: pod spy-trading-2-a\): --force runs it again") as refused:
        plan_rollback(ts(status=moved_on), REVISIONS, 2)
    assert refused.value.code is ExitCode.REJECTED
    forced = plan_rollback(ts(status=moved_on), REVISIONS, 2, force=True).payload
    assert (forced.revision, forced.to_revision, forced.force) == (3, 2, True)
    assert plan_rollback(ts(status=moved_on), REVISIONS, 1).payload.force is False  # never failed: plain


@pytest.mark.parametrize(("status", "to", "code", "text"), [
    ({"currentRevision": 3}, 7, ExitCode.NOT_FOUND, "spy has no revision 7 (revisions: 1, 2, 3"),
    ({"currentRevision": 1, "stableRevision": 1}, None, ExitCode.NOT_FOUND, "no revision before 1"),
    ({"currentRevision": 3}, 3, ExitCode.REJECTED, "revision 3 of spy is already running")],
    ids=["missing", "nothing-older", "running"])
def test_plan_rollback_refusals(status, to, code, text):
    with pytest.raises(OpsctlError) as refused:
        plan_rollback(ts(status=status), REVISIONS, to)
    assert refused.value.code is code
    assert text in refused.value.message


@pytest.mark.parametrize(("spec", "annotations", "switch", "expected"), [
    ({}, {}, Switch("pause", {"paused": True}, {}, ""), {"spec": {"paused": True}}),
    ({"paused": True}, {}, Switch("pause", {"paused": True}, {}, ""), None),
    ({}, {}, Switch("resume", {"paused": False}, {}, ""), None),
    ({"tradingEnabled": False}, {HALT_REASON_ANNOTATION: "x"},
     Switch("unhalt", {"tradingEnabled": True}, {HALT_REASON_ANNOTATION: None}, ""),
     {"spec": {"tradingEnabled": True}, "metadata": {"annotations": {HALT_REASON_ANNOTATION: None}}}),
    ({}, {}, Switch("unhalt", {"tradingEnabled": True}, {HALT_REASON_ANNOTATION: None}, ""), None)],
    ids=["pause", "pause-when-paused", "resume-when-running", "unhalt", "unhalt-when-on"])
def test_plan_switch_writes_nothing_for_a_no_op(spec, annotations, switch, expected):
    assert plan_switch(ts(spec, annotations=annotations), switch) == expected


@pytest.mark.parametrize(("trading", "current", "reason", "expected"), [
    (True, None, None, {HALT_REASON_ANNOTATION: "opsctl halt"}),
    (False, "venue outage", None, None),
    (False, "venue outage", "venue outage", None),
    (False, "venue outage", "risk review", {HALT_REASON_ANNOTATION: "risk review"})],
    ids=["halt", "halted-no-reason-keeps-it", "same-reason", "new-reason"])
def test_halt_keeps_an_existing_reason_unless_given_one(trading, current, reason, expected):
    obj = ts({"tradingEnabled": trading}, annotations={HALT_REASON_ANNOTATION: current} if current else {})
    patch = plan_switch(obj, halt_switch(obj, reason))
    assert (None if patch is None else patch["metadata"]["annotations"]) == expected


ANALYSING = {"currentRevision": 3, "stableRevision": 2, "updateRevision": 3,
             "analysis": {"revision": 3, "phase": "Running", "startedAt": "2026-11-25T10:00:00Z"}}


def sent(request: Any, annotation: str) -> RequestPayload:
    payload = decode(request.patch["metadata"]["annotations"][annotation])
    assert isinstance(payload, RequestPayload)
    return payload


@pytest.mark.parametrize(("plan", "annotation"), [(plan_promote, naming.PROMOTE_ANNOTATION),
                                                   (plan_abort, naming.ABORT_ANNOTATION)], ids=["promote", "abort"])
def test_promote_and_abort_are_bound_to_the_revision_and_the_run_under_analysis(plan, annotation):
    payload = sent(plan(ts(status=ANALYSING)), annotation)
    assert (payload.revision, payload.run, payload.generation) == (3, "2026-11-25T10:00:00Z", 1)
    rolling = sent(plan(ts(status={**ANALYSING, "analysis": {**ANALYSING["analysis"], "revision": 2,
                                                              "phase": "Successful"}})), annotation)
    assert (rolling.revision, rolling.run) == (3, None)  # rolling out, its run not started yet
    with pytest.raises(OpsctlError, match="already stable") as refused:
        plan(ts(status={"updateRevision": 2, "stableRevision": 2}))
    assert refused.value.code is ExitCode.REJECTED


def test_retry_needs_an_aborted_revision():
    with pytest.raises(OpsctlError, match="no aborted revision"):
        plan_retry(ts(status={"updateRevision": 3}))
    assert sent(plan_retry(ts(status={"updateRevision": 3, "abortedRevision": 3})), naming.RETRY_ANNOTATION).revision \
        == 3


def test_restart_is_bound_to_the_running_revision_and_refused_under_analysis():
    assert sent(plan_restart(ts(status={"currentRevision": 2, "stableRevision": 2})),
                naming.RESTART_ANNOTATION).revision == 2
    with pytest.raises(OpsctlError, match="under analysis"):
        plan_restart(ts(status=ANALYSING))
    with pytest.raises(OpsctlError, match="no revision runs"):
        plan_restart(ts(status={}))


# following ---------------------------------------------------------------------------------------------------


class FlakyKube:
    """A kube whose watches follow a script: each list is one watch call (an OpsctlError item fails it)."""

    def __init__(self, script: list[list[Any]]) -> None:
        self.script = iter(script)
        self.asked: list[str] = []

    def watch(self, path: str, query: dict[str, str], seconds: int) -> Any:
        from opsctl.kube import WatchEvent

        self.asked.append(query["resourceVersion"])
        for step in next(self.script):
            if isinstance(step, OpsctlError):
                raise step
            yield WatchEvent("MODIFIED", {"metadata": {"resourceVersion": step}})


def test_a_watch_survives_an_outage_backing_off_and_resuming_from_the_last_version(monkeypatch, capsys):
    from opsctl.client import watch_symbols
    from opsctl.options import Target

    pauses: list[float] = []
    monkeypatch.setattr("opsctl.client.time.sleep", pauses.append)
    kube = FlakyKube([["1", "2", OpsctlError(ExitCode.UNREACHABLE, "cannot reach")],
                      [OpsctlError(ExitCode.NO_ANSWER, "no answer")], ["3"]])
    events = watch_symbols(Target(kube, "ns", "tester"), "ns", "0", None)
    versions = [next(events).object["metadata"]["resourceVersion"] for _ in range(3)]
    assert versions == ["1", "2", "3"]
    assert kube.asked == ["0", "2", "2"]  # each watch again from the last version seen
    assert pauses == [0.5, 1.0]  # backing off while it fails
    assert capsys.readouterr().err.splitlines() == ["opsctl: watch interrupted (cannot reach); again in 0.5s",
                                                    "opsctl: watch interrupted (no answer); again in 1s"]


def test_a_watch_does_not_retry_what_retrying_cannot_fix():
    from opsctl.client import watch_symbols
    from opsctl.options import Target

    kube = FlakyKube([[OpsctlError(ExitCode.REJECTED, "refused")]])
    events = watch_symbols(Target(kube, "ns", "tester"), "ns", "0", None)
    with pytest.raises(OpsctlError, match="refused"):
        next(events)


def test_describe_shows_a_request_not_yet_answered_and_the_last_answer():
    pending = encode(RequestPayload(id="rollback-1", revision=3, generation=2, to_revision=1))
    answered = {"id": "promote-9", "action": "promote", "revision": 3, "generation": 2, "outcome": "Refused",
                "reason": "AnalysisConcluded", "message": "the analysis of revision 3 already concluded Failed",
                "time": "2026-11-25T11:58:00Z"}
    obj = ts(status={"currentRevision": 3, "requests": [answered]},
             annotations={naming.ROLLBACK_ANNOTATION: pending, naming.RETRY_ANNOTATION: "true"})
    lines = describe_text(Described(obj, [], []), None).splitlines()
    assert "Requested:    rollback revision 1 (request rollback-1), not yet answered" in lines
    assert any(line.startswith("Requested:    retry not a request opsctl writes") for line in lines)
    assert ("Last request: promote of revision 3 refused at 2026-11-25T11:58:00Z: the analysis of revision 3 "
            "already concluded Failed") in lines


def test_describe_shows_which_pod_trades():
    lines = describe_text(Described(ts(), [], [], leader="spy-trading-7d9f-abcde (since 2026-12-06T09:00:00Z, "
                                                         "1 handovers)"), None).splitlines()
    assert "Leader:       spy-trading-7d9f-abcde (since 2026-12-06T09:00:00Z, 1 handovers)" in lines
    assert "Leader:       -" in describe_text(Described(ts(), [], []), None).splitlines()
