"""A revision's deploy context reaches its runtimes (the pod's TRADEOPS_REVISION_TRACEPARENT) and its
ControllerRevision (an annotation), and is the same for the same revision: a rebuilt Deployment does not
change, two revisions never share a trace."""

from __future__ import annotations

from trading_operator import api, deploy_trace
from trading_operator.builders import Owner, build_deployment, build_revision
from trading_operator.revisions import Revision, template_hash, template_of
from trading_runtime.telemetry import TRACEPARENT_ENV

OWNER = Owner("spy", "trading", "uid-1")
SPEC = api.TradingSymbolSpec.model_validate({"symbol": "SPY", "market": "equity-options",
                                             "image": "ghcr.io/x/runtime:1"})


def revision(number: int) -> Revision:
    template = template_of(SPEC)
    return Revision(number, f"spy-{number:010d}", template_hash(template), template)


def pod_env(number: int) -> dict[str, str]:
    deployment = build_deployment(OWNER, SPEC, revision(number), 1, "config")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_runtime_reads_the_variable_the_operator_sets():
    assert deploy_trace.TRACEPARENT_ENV == TRACEPARENT_ENV


def test_the_pod_and_the_revision_carry_the_deploys_traceparent():
    expected = deploy_trace.traceparent("trading", "spy-0000000002")
    assert pod_env(2)[TRACEPARENT_ENV] == expected
    manifest = build_revision(OWNER, SPEC, revision(2), generation=1)
    assert manifest["metadata"]["annotations"] == {deploy_trace.TRACEPARENT_ANNOTATION: expected}


def test_a_rebuilt_deployment_is_the_same_and_revisions_differ():
    assert pod_env(2) == pod_env(2)
    assert pod_env(2)[TRACEPARENT_ENV] != pod_env(3)[TRACEPARENT_ENV]
    version, trace_id, span_id, flags = pod_env(2)[TRACEPARENT_ENV].split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "01", 32, 16)
