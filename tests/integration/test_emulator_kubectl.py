"""The standalone emulator process (`python -m devstack.emulator`) driven by kubectl, as the demo does.

kubectl is taken from $KUBECTL or PATH (1.32 from google-cloud-sdk here; Debian's 1.20 works as well)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from devstack.processes import find_kubectl

# A missing kubectl fails these tests with find_kubectl()'s message (scripts/install-system-deps.sh installs it).
KUBECTL = os.environ.get("KUBECTL") or find_kubectl()

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
      versions:
      - name: v1
        served: true
        storage: true
        subresources: {status: {}}
        additionalPrinterColumns:
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Color, type: string, jsonPath: .spec.color}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                properties:
                  size: {type: integer, minimum: 1, maximum: 10}
                  color: {type: string, default: red}
              status: {type: object, x-kubernetes-preserve-unknown-fields: true}
    """)


def widget(size: int) -> str:
    return f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w1}}\nspec: {{size: {size}}}\n"


@dataclass
class Standalone:
    url: str
    kubeconfig: pathlib.Path
    process: subprocess.Popen[str]
    workdir: pathlib.Path

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def write(self, name: str, text: str) -> str:
        path = self.workdir / name
        path.write_text(text)
        return str(path)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    workdir = tmp_path_factory.mktemp("standalone")
    kubeconfig = workdir / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.emulator", "--host", "127.0.0.1", "--port", "0",
         "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield Standalone(url, kubeconfig, process, workdir)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr


def test_the_process_writes_a_kubeconfig_for_its_url(standalone):
    config = yaml.safe_load(standalone.kubeconfig.read_text())
    assert config["current-context"] == "tradeops-emulator"
    assert config["clusters"][0]["cluster"]["server"] == standalone.url
    assert config["users"][0]["user"]["token"]
    names = standalone.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)


def test_kubectl_discovers_the_builtins_and_kopf_peerings(standalone):
    listing = standalone.kubectl("api-resources", "-o", "name").stdout.split()
    assert {"deployments.apps", "leases.coordination.k8s.io", "kopfpeerings.kopf.dev",
            "clusterkopfpeerings.kopf.dev", "customresourcedefinitions.apiextensions.k8s.io"} <= set(listing)


def test_kubectl_crd_and_custom_resource_lifecycle(standalone):
    kubectl = standalone.kubectl
    assert "created" in kubectl("apply", "--validate=false", "-f", standalone.write("crd.yaml", CRD)).stdout
    applied = kubectl("apply", "--validate=false", "-f", standalone.write("w.yaml", widget(3)))
    assert applied.stdout.strip() == "widget.example.com/w1 created"
    table = kubectl("get", "wd").stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "COLOR"]
    assert table[1].split() == ["w1", "3", "red"]
    changed = kubectl("apply", "--validate=false", "-f", standalone.write("w.yaml", widget(4)))
    assert changed.stdout.strip() == "widget.example.com/w1 configured"
    listed = json.loads(kubectl("get", "widgets", "-o", "json").stdout)
    [item] = listed["items"]
    assert item["spec"] == {"size": 4, "color": "red"}
    assert item["metadata"]["generation"] == 2
    server_side = kubectl("apply", "--server-side", "--validate=false", "-f", standalone.write("w.yaml", widget(5)))
    assert "serverside-applied" in server_side.stdout
    assert kubectl("get", "wd", "w1", "-o", "jsonpath={.spec.size}").stdout == "5"
    invalid = kubectl("apply", "--validate=false", "-f", standalone.write("bad.yaml", widget(11)), check=False)
    assert invalid.returncode != 0
    assert "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10" in invalid.stderr
    assert kubectl("delete", "wd", "w1").stdout.strip() == 'widget.example.com "w1" deleted'
    assert "No resources found" in kubectl("get", "wd").stderr
    kubectl("delete", "-f", standalone.write("crd.yaml", CRD))
    assert kubectl("get", "widgets.example.com", check=False).returncode != 0


def test_kubectl_deployments_report_ready_and_scale(standalone):
    kubectl = standalone.kubectl
    kubectl("create", "namespace", "apps")
    kubectl("-n", "apps", "create", "deployment", "web", "--image=nginx:1", "--replicas=2")
    kubectl("-n", "apps", "rollout", "status", "deployment/web", "--timeout=10s")
    kubectl("-n", "apps", "scale", "deployment/web", "--replicas=3")
    kubectl("-n", "apps", "rollout", "status", "deployment/web", "--timeout=10s")  # waits for generation 2
    row = kubectl("-n", "apps", "get", "deployment", "web", "--no-headers").stdout.split()
    assert row[:4] == ["web", "3/3", "3", "3"]
    kubectl("delete", "namespace", "apps")
    assert kubectl("-n", "apps", "get", "deployments", "-o", "name").stdout == ""
