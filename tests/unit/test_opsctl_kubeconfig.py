"""Reading kubeconfig as kubectl does (contexts, merged KUBECONFIG files, paths relative to their file,
inline data, exec plugins, the service account in a pod), and one-line errors that name the file, the
line or the entry, and what to pass instead."""

from __future__ import annotations

import base64
import pathlib

import pytest
import yaml

from opsctl.errors import ExitCode, OpsctlError
from opsctl.kubeconfig import ExecPlugin, load_endpoint


def config(server: str = "https://k8s.example:6443", namespace: str | None = "trading", **user: object) -> dict:
    ctx = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": "Config", "current-context": "main",
            "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": "ca.crt"}}],
            "users": [{"name": "u", "user": user or {"token": "t0k"}}],
            "contexts": [{"name": "main", "context": ctx},
                         {"name": "other", "context": {"cluster": "c", "user": "u"}}]}


def write(path: pathlib.Path, data: object) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_current_context_server_token_namespace_and_relative_ca(tmp_path):
    path = write(tmp_path / "conf" / "kubeconfig", config())
    endpoint = load_endpoint(path, None, None)
    assert (endpoint.server, endpoint.namespace, endpoint.token) == ("https://k8s.example:6443", "trading", "t0k")
    assert endpoint.ca_file == str(tmp_path / "conf" / "ca.crt")
    assert endpoint.source == f'context "main" of {path}'


def test_context_and_namespace_flags(tmp_path):
    path = write(tmp_path / "kubeconfig", config())
    assert load_endpoint(path, "other", None).namespace == "default"
    assert load_endpoint(path, "other", "prod").namespace == "prod"


def test_kubeconfig_variable_merges_files_first_one_wins(tmp_path, monkeypatch):
    first = config(server="https://first:6443")
    first["contexts"] = [first["contexts"][0]]
    second = config(server="https://second:6443")
    second["current-context"] = "other"
    paths = [write(tmp_path / "a", first), write(tmp_path / "b", second)]
    monkeypatch.setenv("KUBECONFIG", ":".join(paths))
    endpoint = load_endpoint(None, None, None)
    assert (endpoint.server, endpoint.namespace) == ("https://first:6443", "trading")
    assert load_endpoint(None, "other", None).source == f'context "other" of {paths[1]}'


def test_inline_data_and_exec_plugins(tmp_path):
    cert = base64.b64encode(b"CERT").decode()
    path = write(tmp_path / "kubeconfig", config(**{
        "client-certificate-data": cert, "client-key-data": cert,
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                 "args": ["eks", "get-token"], "env": [{"name": "AWS_PROFILE", "value": "prod"}]}}))
    endpoint = load_endpoint(path, None, None)
    assert endpoint.cert_data == b"CERT"
    assert endpoint.exec_plugin == ExecPlugin("aws", ("eks", "get-token"), (("AWS_PROFILE", "prod"),),
                                              "client.authentication.k8s.io/v1beta1")


def test_in_a_pod_without_kubeconfig_the_service_account(tmp_path, monkeypatch):
    account = tmp_path / "sa"
    write(account / "token", "pod-token")
    write(account / "namespace", "tradeops-system")
    monkeypatch.setattr("opsctl.kubeconfig.SERVICE_ACCOUNT", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    endpoint = load_endpoint(None, None, None)
    assert (endpoint.server, endpoint.namespace, endpoint.token_file) == \
        ("https://10.0.0.1:443", "tradeops-system", str(account / "token"))


def error(kubeconfig: str | None, context: str | None = None) -> str:
    with pytest.raises(OpsctlError) as failed:
        load_endpoint(kubeconfig, context, None)
    assert failed.value.code is ExitCode.UNREACHABLE
    assert "\n" not in failed.value.message
    return failed.value.message


def test_broken_yaml_names_the_file_and_line(tmp_path):
    path = write(tmp_path / "kubeconfig", "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: x\nusers: []\n")
    message = error(path)
    assert message.startswith(f"kubeconfig {path} line ")
    assert "pass --kubeconfig or set KUBECONFIG" in message


def test_missing_files_name_themselves_and_the_flag(tmp_path):
    assert error(str(tmp_path / "absent")) == (f"no kubeconfig: {tmp_path}/absent does not exist (and not running "
                                               "in a pod): check --kubeconfig / KUBECONFIG")
    default = error(None)
    assert f"{tmp_path}/home/.kube/config does not exist" in default
    assert default.endswith("pass --kubeconfig or set KUBECONFIG")


def test_unknown_context_lists_the_known_ones(tmp_path):
    path = write(tmp_path / "kubeconfig", config())
    assert error(path, "prod") == f"context 'prod' (--context) is not in kubeconfig {path} (contexts: main, other)"


@pytest.mark.parametrize(("change", "text"), [
    (lambda c: c.pop("current-context"), "has no current-context: pass --context (contexts: main, other)"),
    (lambda c: c["clusters"][0]["cluster"].pop("server"), "cluster 'c' in"),
    (lambda c: c.update(clusters=[]), "names cluster 'c', which the kubeconfig does not define"),
    (lambda c: c.update(clusters="nope"), "'clusters' is not a list"),
    (lambda c: c["users"][0].update(user={"auth-provider": {"name": "gcp"}}), "auth-provider 'gcp'"),
    (lambda c: c["users"][0].update(user={"client-certificate-data": "%%%"}), "client-certificate-data in")],
    ids=["no-current-context", "no-server", "undefined-cluster", "not-a-list", "auth-provider", "bad-base64"])
def test_incomplete_kubeconfigs_say_what_is_wrong(tmp_path, change, text):
    data = config()
    change(data)
    assert text in error(write(tmp_path / "kubeconfig", data))
