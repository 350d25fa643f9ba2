"""opsctl promote / abort / retry / analysis / tune against the emulated API: exit codes, output and the
exact PATCH requests (the operator's side of these requests is tested in test_rollout and test_analysis)."""

from __future__ import annotations

import json
import threading

from devstack.processes import wait_for
from opsctl.errors import ExitCode
from tests.integration import emulator_fixtures
from tests.integration.test_opsctl_cli import Cluster, cluster
from trading_operator import naming
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.user_requests import RequestPayload, decode

emulator_thread = emulator_fixtures.emulator_thread
__all__ = ["cluster", "emulator_thread"]

MERGE = "application/merge-patch+json"
RUN = {
    "revision": 3, "kind": "Rollout", "phase": "Running", "startedAt": "2026-11-25T10:00:00Z",
    "tallies": [{"metric": "tick-to-signal-latency", "successful": 2, "failed": 1}],
    "measurements": [
        {"time": "2026-11-25T10:00:06Z", "metric": "tick-to-signal-latency", "phase": "Successful",
         "value": 0.00013, "message": "0.00013 s below 0.05 s"},
        {"time": "2026-11-25T10:00:08Z", "metric": "tick-to-signal-latency", "phase": "Failed", "value": 0.12,
         "message": "0.12 s not below 0.05 s"},
    ],
}
ANALYSING = {"currentRevision": 3, "stableRevision": 2, "updateRevision": 3, "phase": "Progressing",
             "analysis": RUN}


def annotation_patch(cluster: Cluster, key: str, value: str | None = "true") -> list[tuple[str, str, object]]:
    return [(f"/apis/trading.tradeops.io/v1alpha1/namespaces/{cluster.namespace}/tradingsymbols/spy", MERGE,
             {"metadata": {"annotations": {key: value}}})]


def sent(cluster: Cluster, key: str) -> RequestPayload:
    """The one request PATCHed, decoded."""
    [(path, content_type, body)] = cluster.patches()
    assert (path, content_type) == (f"/apis/trading.tradeops.io/v1alpha1/namespaces/{cluster.namespace}/"
                                    "tradingsymbols/spy", MERGE)
    payload = decode(body["metadata"]["annotations"][key])
    assert isinstance(payload, RequestPayload)
    return payload


def answering(cluster: Cluster, key: str, outcome: str, reason: str, message: str) -> threading.Thread:
    """A stand-in operator that answers the first request under `key` as given."""
    def answer() -> None:
        def pending() -> RequestPayload | None:
            value = (cluster.ts()["metadata"].get("annotations") or {}).get(key)
            found = decode(value) if value else None
            return found if isinstance(found, RequestPayload) else None
        request = wait_for(pending, 10, "a request", interval=0.05)
        cluster.kube.patch_status(TRADING_SYMBOLS, cluster.namespace, "spy", {"requests": [
            {"id": request.id, "action": "promote", "revision": request.revision, "generation": request.generation,
             "outcome": outcome, "reason": reason, "message": message, "time": "2026-11-25T10:00:09Z"}]})
        cluster.kube.merge_patch(TRADING_SYMBOLS, cluster.namespace, "spy", {"metadata": {"annotations": {key: None}}})
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_promote_no_wait_sends_a_request_bound_to_the_run_under_analysis(cluster: Cluster) -> None:
    cluster.set_status(ANALYSING)
    result = cluster.opsctl("promote", "spy", "--no-wait")
    assert result.exit_code == 0, result.output
    payload = sent(cluster, naming.PROMOTE_ANNOTATION)
    assert (payload.revision, payload.run) == (3, RUN["startedAt"])
    assert result.stdout.strip() == (f"spy: promote of revision 3 requested (request {payload.id}; --no-wait: not "
                                     "waiting for the answer)")


def test_promote_prints_the_operators_acceptance(cluster: Cluster) -> None:
    cluster.set_status(ANALYSING)
    operator = answering(cluster, naming.PROMOTE_ANNOTATION, "Accepted", "Accepted", "promote of revision 3")
    result = cluster.opsctl("promote", "spy")
    operator.join(10)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "spy: promote of revision 3 accepted: promote of revision 3"


def test_a_refused_promote_exits_6_with_the_operators_reason(cluster: Cluster) -> None:
    cluster.set_status(ANALYSING)
    why = "the analysis of revision 3 already concluded Failed (tick-to-signal-latency: 0.12 s not below 0.05 s)"
    operator = answering(cluster, naming.PROMOTE_ANNOTATION, "Refused", "AnalysisConcluded", why)
    result = cluster.opsctl("-o", "json", "promote", "spy")
    operator.join(10)
    assert result.exit_code == ExitCode.REJECTED
    assert result.stderr.strip() == ("opsctl: error: spy: promote of revision 3 refused by the operator "
                                     f"(AnalysisConcluded): {why}")
    printed = json.loads(result.stdout)
    assert (printed["outcome"], printed["reason"], printed["revision"]) == ("Refused", "AnalysisConcluded", 3)


def test_abort_and_promote_are_refused_when_nothing_is_under_analysis(cluster: Cluster) -> None:
    cluster.set_status({"currentRevision": 2, "stableRevision": 2, "updateRevision": 2})
    for command in ("promote", "abort"):
        result = cluster.opsctl(command, "spy")
        assert result.exit_code == ExitCode.REJECTED
        assert "already stable" in result.stderr
    assert cluster.patches() == []


def test_abort_no_wait_requests_a_rollback_of_the_revision_under_analysis(cluster: Cluster) -> None:
    cluster.set_status(ANALYSING)
    result = cluster.opsctl("-o", "json", "abort", "spy", "--no-wait")
    payload = sent(cluster, naming.ABORT_ANNOTATION)
    assert json.loads(result.stdout) == {"name": "spy", "namespace": cluster.namespace, "action": "abort",
                                         "revision": 3, "request": payload.id, "outcome": "Pending"}


def test_retry_needs_an_aborted_revision(cluster: Cluster) -> None:
    cluster.set_status({"currentRevision": 2, "stableRevision": 2, "updateRevision": 3})
    refused = cluster.opsctl("retry", "spy")
    assert refused.exit_code == ExitCode.REJECTED
    assert "no aborted revision" in refused.stderr
    cluster.set_status({"abortedRevision": 3})
    assert cluster.opsctl("retry", "spy", "--no-wait").exit_code == 0
    assert sent(cluster, naming.RETRY_ANNOTATION).revision == 3


def test_analysis_prints_the_verdict_counts_and_measurements(cluster: Cluster) -> None:
    cluster.set_status(ANALYSING)
    result = cluster.opsctl("analysis", "spy")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    # The shipped analysis policy: 10 measurements 1 s apart; a failure within the limit is measured again.
    assert out[0] == ("spy: Rollout analysis of revision 3: Running, measurement 3 of 10, latest "
                      "tick-to-signal-latency 0.12 s not below 0.05 s (Failed), about 7s left")
    assert "tick-to-signal-latency: 2 ok, 1 failed, 0 inconclusive, 0 errors" in out
    assert out[-1].split()[1:5] == ["tick-to-signal-latency", "Failed", "0.12", "-"]
    assert out[-1].endswith("0.12 s not below 0.05 s")
    assert json.loads(cluster.opsctl("-o", "json", "analysis", "spy").stdout)["measurements"][1]["value"] == 0.12
    assert cluster.patches() == []


def test_analysis_of_a_symbol_without_a_run_exits_3(cluster: Cluster) -> None:
    cluster.set_status({"currentRevision": 1, "stableRevision": 1})
    result = cluster.opsctl("analysis", "spy")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "no analysis run yet" in result.stderr


def test_tune_freeze_unfreeze_and_status(cluster: Cluster) -> None:
    cluster.set_status({"tuning": {"policy": "hit-rate", "overrides": {"strategy.entryScore": 0.7}, "history": [
        {"time": "2026-11-25T10:00:00Z", "parameter": "strategy.entryScore", "fromValue": 0.6, "toValue": 0.7,
         "revision": 4, "baseline": 0.51, "objective": 0.53, "outcome": "Kept"}]}})
    assert cluster.opsctl("tune", "freeze", "spy").exit_code == 0
    assert cluster.patches() == annotation_patch(cluster, naming.TUNING_FROZEN_ANNOTATION)
    out = cluster.opsctl("tune", "status", "spy").stdout
    assert "spy: tuning policy hit-rate, frozen" in out
    assert "strategy.entryScore" in out
    assert "Kept" in out
    assert json.loads(cluster.opsctl("-o", "json", "tune", "status", "spy").stdout)["frozen"] is True
    assert cluster.opsctl("tune", "unfreeze", "spy").exit_code == 0
    assert naming.TUNING_FROZEN_ANNOTATION not in (cluster.ts()["metadata"].get("annotations") or {})
