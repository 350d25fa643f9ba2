"""CD's own `kubectl apply` line, run by kubectl against the emulated API: every TradingSymbol the repository
declares under deploy/symbols/ (the 12-symbol example in its own namespace included) lands, and applying the
same tree again changes nothing."""

from __future__ import annotations

import pathlib
import shlex
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from devstack.processes import REPO_ROOT, EmulatorProcess, find_kubectl, install_crd, kube_for
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import NAMESPACES, KubeApi

CD = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "cd.yml").read_text())
(APPLY,) = [shlex.split(step["run"]) for step in CD["jobs"]["deploy"]["steps"]
            if step.get("run", "").startswith("kubectl apply")]
PULUMI_NAMESPACE = "trading"
"""Created by the Pulumi program before CD applies symbols (infra.settings.Settings.trading_namespace)."""


@pytest.fixture
def api(tmp_path: pathlib.Path) -> Iterator[tuple[EmulatorProcess, KubeApi]]:
    emulator = EmulatorProcess(tmp_path).start()
    try:
        kube = kube_for(emulator.kubeconfig)
        install_crd(kube)
        kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": PULUMI_NAMESPACE}})
        yield emulator, kube
    finally:
        emulator.stop()


def cd_apply(emulator: EmulatorProcess) -> subprocess.CompletedProcess[str]:
    # The emulator serves no /openapi for kubectl's client-side schema check; the API server still validates.
    argv = [find_kubectl(), "--kubeconfig", str(emulator.kubeconfig), *APPLY[1:], "--validate=false"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def declared() -> set[tuple[str, str]]:
    return {(doc["metadata"]["namespace"], doc["spec"]["symbol"])
            for path in (REPO_ROOT / "deploy" / "symbols").rglob("*.yaml")
            for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == "TradingSymbol"}


def test_the_cd_apply_lands_every_declared_symbol_and_is_idempotent(api):
    emulator, kube = api
    first = cd_apply(emulator)
    assert first.returncode == 0, first.stderr
    stored = {(ts["metadata"]["namespace"], ts["spec"]["symbol"]): ts for ts in kube.list_objects(TRADING_SYMBOLS)}
    assert set(stored) == declared()
    assert len(stored) == 15
    assert sum(ns == "trading-demo" for ns, _ in stored) == 12
    again = cd_apply(emulator)
    assert again.returncode == 0, again.stderr
    for ts in kube.list_objects(TRADING_SYMBOLS):
        key = (ts["metadata"]["namespace"], ts["spec"]["symbol"])
        assert ts["metadata"]["generation"] == stored[key]["metadata"]["generation"], f"{key} changed on re-apply"
