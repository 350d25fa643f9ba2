"""Batch backtests in a cluster: the DaskJob `opsctl backtest daskjob` prints validates against the
dask-kubernetes operator's own CRD (from the package whose chart the Pulumi program installs), and its pods
meet the restricted pod security standard; the Pulumi program installs that operator (under mocks)."""

from __future__ import annotations

import importlib.metadata
import pathlib

import dask_kubernetes
import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from backtest.daskjob import daskjob
from opsctl.main import app
from tests.unit.infra_harness import STACKS, built

HELM = pathlib.Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / "dask-kubernetes-operator"
RELEASE = "kubernetes:helm.sh/v3:Release"


def crd_schema() -> dict:
    crd = yaml.safe_load((HELM / "crds" / "daskjob.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def manifest(**kwargs):
    return daskjob("wf-spy", "tradeops-backtests", "ghcr.io/tradeops/backtest:0.1.0",
                   ["walk-forward", "--file", "/data/spy.parquet", "--grid", "strategy.entryScore=0.5,0.6", "--json"],
                   **kwargs)


def test_the_daskjob_validates_against_the_operators_crd():
    job = manifest(workers=4, data_claim="market-data")
    jsonschema.validate(job, crd_schema())
    assert job["apiVersion"] == "kubernetes.dask.org/v1"
    assert job["spec"]["cluster"]["spec"]["worker"]["replicas"] == 4
    (container,) = job["spec"]["job"]["spec"]["containers"]
    assert container["args"][:3] == ["opsctl", "backtest", "walk-forward"]
    assert {"name": "data", "mountPath": "/data", "readOnly": True} in container["volumeMounts"]


def test_a_bad_daskjob_is_refused_by_the_crd():
    job = manifest()
    job["spec"]["cluster"]["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, crd_schema())
    with pytest.raises(ValueError, match="at least one worker"):
        manifest(workers=0)


def test_every_daskjob_pod_meets_the_restricted_standard():
    job = manifest(data_claim="market-data")
    spec = job["spec"]
    for pod in (spec["job"]["spec"], spec["cluster"]["spec"]["worker"]["spec"],
                spec["cluster"]["spec"]["scheduler"]["spec"]):
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def test_opsctl_prints_the_daskjob():
    result = CliRunner().invoke(app, ["backtest", "daskjob", "wf1", "--image", "img:1", "--workers", "3", "--",
                                      "sweep", "--grid", "strategy.entryScore=0.5,0.6"])
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    jsonschema.validate(job, crd_schema())
    assert job["spec"]["job"]["spec"]["containers"][0]["args"] == ["opsctl", "backtest", "sweep", "--grid",
                                                                    "strategy.entryScore=0.5,0.6"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_installs_the_pinned_operator_with_hardened_values(stack):
    release = built(stack).one(RELEASE, "dask-kubernetes-operator").inputs
    # The chart version is the package's whose CRD the DaskJobs are validated against above.
    assert release["version"] == importlib.metadata.version("dask-kubernetes")
    assert release["namespace"] == "tradeops-backtests"
    values = release["values"]
    chart_values = yaml.safe_load((HELM / "values.yaml").read_text())
    assert set(values) <= set(chart_values)  # every value we set is one the chart reads
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert set(values["resources"]) == {"requests", "limits"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_backtest_namespace_is_restricted_and_closed_to_other_namespaces(stack):
    namespaces = {r.inputs["metadata"]["name"]: r.inputs for r in built(stack).of_kind("Namespace")}
    labels = namespaces["tradeops-backtests"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    (policy,) = [r.inputs for r in built(stack).of_kind("NetworkPolicy")
                 if r.inputs["metadata"]["namespace"] == "tradeops-backtests"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert built(stack).outputs["backtestNamespace"] == "tradeops-backtests"
