"""The emulated API server, each behaviour pinned to what a real Kubernetes API server does.

Driven over HTTP with the real `kubernetes` client (through KubeApi) against the emulator process."""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.request

import pytest
from kubernetes.client.exceptions import ApiException

from devstack.processes import EmulatorProcess, install_crd, kube_for
from trading_operator.crd import build_crd
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import CONFIGMAPS, CRDS, DEPLOYMENTS, NAMESPACES, KubeApi, Resource

WIDGETS = Resource("example.com/v1", "widgets")
LEASES = Resource("coordination.k8s.io/v1", "leases")


@pytest.fixture(scope="module")
def emulator_process(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("emulator")).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def api(emulator_process) -> KubeApi:
    kube = kube_for(emulator_process.kubeconfig)
    install_crd(kube)
    return kube


@pytest.fixture
def ns(api) -> str:
    name = f"e-{len(api.list_objects(NAMESPACES))}-{threading.get_ident() % 1000}"
    api.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data}


def deployment(name: str, replicas: int = 1) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "a", "image": "x:1"},
                                                          {"name": "b", "image": "y:1"}]}}}}


def ts(name: str, **spec) -> dict:
    return {"apiVersion": TRADING_SYMBOLS.api_version, "kind": "TradingSymbol", "metadata": {"name": name},
            "spec": {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/x/rt:1", **spec}}


def raw(emulator_process, path: str, accept: str = "application/json", timeout: float = 10) -> tuple[int, str, str]:
    request = urllib.request.Request(emulator_process.url + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


# Server-set metadata ---------------------------------------------------------------------------------

def test_create_sets_server_metadata(api, ns):
    created = api.create(CONFIGMAPS, ns, cm("a"))
    meta = created["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert meta["resourceVersion"].isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["namespace"] == ns
    assert created["kind"] == "ConfigMap"
    assert created["apiVersion"] == "v1"


def test_resource_versions_grow_on_every_write(api, ns):
    first = api.create(CONFIGMAPS, ns, cm("a"))["metadata"]["resourceVersion"]
    second = api.merge_patch(CONFIGMAPS, ns, "a", {"data": {"k": "v"}})["metadata"]["resourceVersion"]
    assert int(second) > int(first)


def test_generation_moves_only_with_the_spec(api, ns):
    created = api.create(DEPLOYMENTS, ns, deployment("d"))
    assert created["metadata"]["generation"] == 1
    labelled = api.merge_patch(DEPLOYMENTS, ns, "d", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    status = api.patch_status(DEPLOYMENTS, ns, "d", {"replicas": 9})
    assert status["metadata"]["generation"] == 1
    scaled = api.merge_patch(DEPLOYMENTS, ns, "d", {"spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2


def test_generate_name(api, ns):
    created = api.create(CONFIGMAPS, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"generateName": "gen-"}})
    assert re.fullmatch(r"gen-[a-z0-9]{5}", created["metadata"]["name"])


def test_namespace_in_body_must_match_the_url(api, ns):
    body = cm("a")
    body["metadata"]["namespace"] = "other"
    with pytest.raises(ApiException) as error:
        api.create(CONFIGMAPS, ns, body)
    assert error.value.status == 400


def test_missing_namespace_is_not_found(api):
    with pytest.raises(ApiException) as error:
        api.create(CONFIGMAPS, "does-not-exist", cm("a"))
    assert error.value.status == 404


# Errors and concurrency ------------------------------------------------------------------------------

def test_not_found_is_a_404_status(api, ns):
    with pytest.raises(ApiException) as error:
        api.get(CONFIGMAPS, ns, "missing")
    assert error.value.status == 404
    assert status_of(error.value)["reason"] == "NotFound"
    assert status_of(error.value)["kind"] == "Status"


def test_create_existing_is_409_already_exists(api, ns):
    api.create(CONFIGMAPS, ns, cm("a"))
    with pytest.raises(ApiException) as error:
        api.create(CONFIGMAPS, ns, cm("a"))
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "AlreadyExists"


@pytest.mark.parametrize("how", ["replace", "merge-patch"])
def test_stale_resource_version_is_409_conflict(api, ns, how):
    old = api.create(CONFIGMAPS, ns, cm("a"))
    api.merge_patch(CONFIGMAPS, ns, "a", {"data": {"k": "1"}})
    stale = copy.deepcopy(old)
    stale["data"] = {"k": "2"}
    stale_patch = {"metadata": {"resourceVersion": old["metadata"]["resourceVersion"]}, "data": {"k": "2"}}

    def write() -> None:
        if how == "replace":
            api.replace(CONFIGMAPS, ns, "a", stale)
        else:
            api.merge_patch(CONFIGMAPS, ns, "a", stale_patch)

    with pytest.raises(ApiException) as error:
        write()
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "Conflict"
    assert api.get(CONFIGMAPS, ns, "a")["data"] == {"k": "1"}


def test_a_lease_update_from_a_stale_resource_version_is_409_conflict(api, ns):
    """Leader election's optimistic lock (trading_runtime/election.py): of two candidates that read the same
    Lease, the second PUT is refused and the first holder stays."""
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "tradeops-spy"},
             "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 5, "leaseTransitions": 0}}
    read = api.create(LEASES, ns, lease)
    first, second = copy.deepcopy(read), copy.deepcopy(read)
    first["spec"]["renewTime"] = "2026-12-06T09:00:00.000000Z"
    second["spec"] |= {"holderIdentity": "pod-b", "leaseTransitions": 1}
    assert api.replace(LEASES, ns, "tradeops-spy", first)["spec"]["holderIdentity"] == "pod-a"
    with pytest.raises(ApiException) as error:
        api.replace(LEASES, ns, "tradeops-spy", second)
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "Conflict"
    assert api.get(LEASES, ns, "tradeops-spy")["spec"]["holderIdentity"] == "pod-a"
    with pytest.raises(ApiException) as error:
        api.create(LEASES, ns, lease)
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "AlreadyExists"


def test_failed_json_patch_test_is_422(api, ns):
    api.create(CONFIGMAPS, ns, cm("a"))
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
           {"op": "add", "path": "/data", "value": {"k": "v"}}]
    with pytest.raises(ApiException) as error:
        api.json_patch(CONFIGMAPS, ns, "a", ops)
    assert error.value.status == 422
    assert "data" not in api.get(CONFIGMAPS, ns, "a") or not api.get(CONFIGMAPS, ns, "a")["data"]


def test_json_patch_applies_when_the_test_holds(api, ns):
    current = api.create(CONFIGMAPS, ns, cm("a"))
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": current["metadata"]["resourceVersion"]},
           {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}]
    assert api.json_patch(CONFIGMAPS, ns, "a", ops)["metadata"]["finalizers"] == ["x/y"]


def test_merge_patch_null_deletes_a_key(api, ns):
    api.create(CONFIGMAPS, ns, cm("a", labels={"keep": "1", "drop": "1"}))
    patched = api.merge_patch(CONFIGMAPS, ns, "a", {"metadata": {"labels": {"drop": None}}})
    assert patched["metadata"]["labels"] == {"keep": "1"}


def test_strategic_merge_patch_merges_containers_by_name(api, ns):
    api.create(DEPLOYMENTS, ns, deployment("d"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y:2"}]}}}}
    patched = api._call("PATCH", DEPLOYMENTS.path(ns, "d"), body=patch,
                        content_type="application/strategic-merge-patch+json")
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "x:1"), ("b", "y:2")]


# Status subresource ----------------------------------------------------------------------------------

def test_status_subresource_is_isolated(api, ns):
    api.create(TRADING_SYMBOLS, ns, {**ts("s"), "status": {"phase": "Ready"}})
    assert "phase" not in (api.get(TRADING_SYMBOLS, ns, "s").get("status") or {})
    api.patch_status(TRADING_SYMBOLS, ns, "s", {"phase": "Ready"})
    api.merge_patch(TRADING_SYMBOLS, ns, "s", {"spec": {"replicas": 2}, "status": {"phase": "Invalid"}})
    current = api.get(TRADING_SYMBOLS, ns, "s")
    assert current["status"]["phase"] == "Ready"
    assert current["spec"]["replicas"] == 2
    via_status = api._call("PATCH", TRADING_SYMBOLS.path(ns, "s", "status"),
                           body={"spec": {"replicas": 4}, "status": {"phase": "Paused"}},
                           content_type="application/merge-patch+json")
    assert via_status["spec"]["replicas"] == 2
    assert via_status["status"]["phase"] == "Paused"


def test_a_status_patch_with_a_stale_resource_version_is_409_conflict(api, ns):
    """The operator's optimistic lock: a status merge patch carrying the resourceVersion it was planned from
    fails when anything (an annotation, another writer) changed the object since, and changes nothing."""
    read = api.create(TRADING_SYMBOLS, ns, ts("s"))
    api.merge_patch(TRADING_SYMBOLS, ns, "s", {"metadata": {"annotations": {"x": "1"}}})
    stale = {"metadata": {"resourceVersion": read["metadata"]["resourceVersion"]}, "status": {"phase": "Ready"}}
    with pytest.raises(ApiException) as error:
        api._call("PATCH", TRADING_SYMBOLS.path(ns, "s", "status"), body=stale,
                  content_type="application/merge-patch+json")
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "Conflict"
    assert "phase" not in (api.get(TRADING_SYMBOLS, ns, "s").get("status") or {})
    fresh = api.get(TRADING_SYMBOLS, ns, "s")["metadata"]["resourceVersion"]
    written = api._call("PATCH", TRADING_SYMBOLS.path(ns, "s", "status"),
                        body={**stale, "metadata": {"resourceVersion": fresh}},
                        content_type="application/merge-patch+json")
    assert written["status"]["phase"] == "Ready"


# Lists and selectors ---------------------------------------------------------------------------------

def test_list_has_kind_api_version_and_resource_version(api, ns):
    api.create(CONFIGMAPS, ns, cm("a"))
    listing = api._call("GET", CONFIGMAPS.path(ns))
    assert listing["kind"] == "ConfigMapList"
    assert listing["apiVersion"] == "v1"
    assert listing["metadata"]["resourceVersion"].isdigit()
    assert all(item["kind"] == "ConfigMap" for item in listing["items"])


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("tier=web", ["a", "b"]), ("tier==web,env=prod", ["a"]), ("tier!=web", ["c", "d"]),
     ("env in (prod,dev)", ["a", "b", "c"]), ("env notin (prod)", ["b", "c", "d"]), ("env", ["a", "b", "c"]),
     ("!env", ["d"])],
    ids=["equals", "and", "not-equals", "in", "notin", "exists", "not-exists"],
)
def test_label_selectors(api, ns, selector, expected):
    api.create(CONFIGMAPS, ns, cm("a", {"tier": "web", "env": "prod"}))
    api.create(CONFIGMAPS, ns, cm("b", {"tier": "web", "env": "dev"}))
    api.create(CONFIGMAPS, ns, cm("c", {"tier": "db", "env": "dev"}))
    api.create(CONFIGMAPS, ns, cm("d", {"tier": "db"}))
    assert sorted(i["metadata"]["name"] for i in api.list_objects(CONFIGMAPS, ns, selector)) == expected


def test_field_selector_and_cluster_wide_list(api, ns):
    api.create(CONFIGMAPS, ns, cm("a"))
    api.create(CONFIGMAPS, ns, cm("b"))
    named = api._call("GET", CONFIGMAPS.path(ns), query=[("fieldSelector", "metadata.name=b")])["items"]
    assert [i["metadata"]["name"] for i in named] == ["b"]
    everywhere = api.list_objects(CONFIGMAPS)
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere} >= {(ns, "a"), (ns, "b")}


def test_namespaces_are_listable(api, ns):
    names = [n["metadata"]["name"] for n in api.list_objects(NAMESPACES)]
    assert {"default", "kube-system", ns} <= set(names)


# Watches ---------------------------------------------------------------------------------------------

def watch_lines(emulator_process, path: str, count: int, timeout: float = 10) -> list[dict]:
    """Read `count` events from a watch stream (the stream must produce them)."""
    request = urllib.request.Request(emulator_process.url + path)
    events = []
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        while len(events) < count:
            line = response.readline()
            if not line:
                break
            events.append(json.loads(line))
    return events


def test_watch_from_a_list_version_misses_nothing(api, ns, emulator_process):
    api.create(CONFIGMAPS, ns, cm("before"))
    version = api._call("GET", CONFIGMAPS.path(ns))["metadata"]["resourceVersion"]
    api.create(CONFIGMAPS, ns, cm("after"))  # between the list and the watch
    api.merge_patch(CONFIGMAPS, ns, "after", {"data": {"k": "v"}})
    api.delete(CONFIGMAPS, ns, "after")
    events = watch_lines(emulator_process, f"{CONFIGMAPS.path(ns)}?watch=true&resourceVersion={version}", 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]


def test_watch_without_version_starts_with_the_current_state(api, ns, emulator_process):
    api.create(CONFIGMAPS, ns, cm("x", {"pick": "yes"}))
    api.create(CONFIGMAPS, ns, cm("y"))
    path = f"{CONFIGMAPS.path(ns)}?watch=true&labelSelector=pick%3Dyes&timeoutSeconds=1"
    events = watch_lines(emulator_process, path, 5)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "x")]


def test_watch_honours_timeout_seconds(api, ns, emulator_process):
    status, _, body = raw(emulator_process, f"{CONFIGMAPS.path(ns)}?watch=true&timeoutSeconds=1", timeout=5)
    assert status == 200
    assert body == ""


# Deletion, finalizers and garbage collection ---------------------------------------------------------

def test_finalizers_hold_deletion_until_removed(api, ns):
    body = cm("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api.create(CONFIGMAPS, ns, body)
    api.delete(CONFIGMAPS, ns, "a")
    held = api.get(CONFIGMAPS, ns, "a")
    assert held["metadata"]["deletionTimestamp"]
    api.merge_patch(CONFIGMAPS, ns, "a", {"metadata": {"finalizers": None}})
    assert api.get_or_none(CONFIGMAPS, ns, "a") is None


def test_owner_deletion_collects_dependents_in_cascade(api, ns):
    owner = api.create(CONFIGMAPS, ns, cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    child = cm("child")
    child["metadata"]["ownerReferences"] = [ref]
    child = api.create(CONFIGMAPS, ns, child)
    grandchild = cm("grandchild")
    grandchild["metadata"]["ownerReferences"] = [{**ref, "name": "child", "uid": child["metadata"]["uid"]}]
    api.create(CONFIGMAPS, ns, grandchild)
    unrelated = api.create(CONFIGMAPS, ns, cm("unrelated"))
    api.delete(CONFIGMAPS, ns, "owner")
    assert api.get_or_none(CONFIGMAPS, ns, "child") is None
    assert api.get_or_none(CONFIGMAPS, ns, "grandchild") is None
    assert api.get(CONFIGMAPS, ns, "unrelated")["metadata"]["uid"] == unrelated["metadata"]["uid"]


# CRDs ------------------------------------------------------------------------------------------------

def widget_crd() -> dict:
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": schema}}]}}


def test_crd_registration_defaulting_pruning_validation_and_removal(api, ns, emulator_process):
    crd = api.create(CRDS, None, widget_crd())
    assert {c["type"] for c in crd["status"]["conditions"]} == {"Established", "NamesAccepted"}
    _, _, body = raw(emulator_process, "/apis/example.com/v1")
    assert "widgets" in [r["name"] for r in json.loads(body)["resources"]]
    created = api.create(WIDGETS, ns, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                                       "spec": {"size": 3, "unknown": 1, "extra": {"free": True}}})
    assert created["spec"] == {"size": 3, "color": "red", "extra": {"free": True}}
    with pytest.raises(ApiException) as error:
        api.create(WIDGETS, ns, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "v"},
                                 "spec": {"size": 11, "color": "green"}})
    assert error.value.status == 422
    causes = {c["field"]: c for c in status_of(error.value)["details"]["causes"]}
    assert set(causes) == {"spec.size", "spec.color"}
    assert "less than or equal to 10" in causes["spec.size"]["message"]
    api.delete(CRDS, None, "widgets.example.com")
    with pytest.raises(ApiException) as gone:
        api.get(WIDGETS, ns, "w")
    assert gone.value.status == 404


def test_trading_symbol_crd_rejects_with_the_field(api, ns):
    with pytest.raises(ApiException) as error:
        api.create(TRADING_SYMBOLS, ns, ts("bad", symbol="spy", replicas=9))
    message = status_of(error.value)["message"]
    assert "spec.symbol" in message
    assert "spec.replicas" in message


def test_an_immutable_field_is_refused_on_update_as_a_real_api_server_refuses_it(api, ns):
    """The CRD's CEL transition rule `self == oldSelf` on spec.symbol: kube-apiserver answers a change with 422
    Invalid, the field, and the schema type in place of the value."""
    api.create(TRADING_SYMBOLS, ns, ts("held"))
    for change in (lambda: api.merge_patch(TRADING_SYMBOLS, ns, "held", {"spec": {"symbol": "QQQ"}}),
                   lambda: api.replace(TRADING_SYMBOLS, ns, "held", {**api.get(TRADING_SYMBOLS, ns, "held"),
                                                                     "spec": ts("held", symbol="QQQ")["spec"]})):
        with pytest.raises(ApiException) as error:
            change()
        assert error.value.status == 422
        status = status_of(error.value)
        immutable = ("spec.symbol is immutable: a TradingSymbol trades one symbol for life (delete it and create "
                     "another to trade a different one)")
        assert status["reason"] == "Invalid"
        assert status["message"] == (f'TradingSymbol.trading.tradeops.io "held" is invalid: spec.symbol: Invalid '
                                     f'value: "string": {immutable}')
        assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.symbol",
                                                "message": f'Invalid value: "string": {immutable}'}]
    assert api.get(TRADING_SYMBOLS, ns, "held")["spec"]["symbol"] == "SPY"
    changed = api.merge_patch(TRADING_SYMBOLS, ns, "held", {"spec": {"symbol": "SPY", "replicas": 2}})
    assert changed["spec"]["replicas"] == 2  # the rule holds when the value stays


def test_a_crd_with_a_cel_rule_the_emulator_cannot_evaluate_is_refused(api):
    crd = widget_crd()
    crd["metadata"]["name"] = crd["spec"]["names"]["plural"] = "gadgets"
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["names"].update(singular="gadget", kind="Gadget", shortNames=[])
    size = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"]
    size["x-kubernetes-validations"] = [{"rule": "self > 2"}]
    with pytest.raises(ApiException) as error:
        api.create(CRDS, None, crd)
    assert error.value.status == 422
    assert "spec.size: self > 2" in status_of(error.value)["message"]


def test_crd_update_re_registers(api):
    crd = build_crd()
    crd["spec"]["names"]["shortNames"] = ["ts", "tsym"]
    api.merge_patch(CRDS, None, crd["metadata"]["name"], {"spec": {"names": crd["spec"]["names"]}})
    listing = api._call("GET", "/apis/trading.tradeops.io/v1alpha1")
    entry = next(r for r in listing["resources"] if r["name"] == "tradingsymbols")
    assert entry["shortNames"] == ["ts", "tsym"]
    install_crd(api)


# Discovery and printing ------------------------------------------------------------------------------

def test_discovery_documents(emulator_process):
    _, _, core = raw(emulator_process, "/api/v1")
    assert json.loads(core)["groupVersion"] == "v1"
    _, _, groups = raw(emulator_process, "/apis")
    names = {g["name"] for g in json.loads(groups)["groups"]}
    assert {"apps", "policy", "networking.k8s.io", "apiextensions.k8s.io", "kopf.dev", "trading.tradeops.io"} <= names
    _, _, apps = raw(emulator_process, "/apis/apps/v1")
    deployments = next(r for r in json.loads(apps)["resources"] if r["name"] == "deployments")
    assert deployments["namespaced"] is True
    assert "watch" in deployments["verbs"]
    assert "deployments/status" in [r["name"] for r in json.loads(apps)["resources"]]


def test_aggregated_discovery_falls_back_to_legacy_json(emulator_process):
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    status, content_type, body = raw(emulator_process, "/apis", accept=accept)
    assert status == 200
    assert content_type.startswith("application/json")
    assert json.loads(body)["kind"] == "APIGroupList"


def test_table_printing_uses_printer_columns(api, ns, emulator_process):
    api.create(TRADING_SYMBOLS, ns, ts("spy"))
    api.patch_status(TRADING_SYMBOLS, ns, "spy", {"phase": "Ready", "currentRevision": 3})
    _, _, body = raw(emulator_process, TRADING_SYMBOLS.path(ns), accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    table = json.loads(body)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Symbol", "Phase", "Revision", "Stable",
                                                               "Ready", "Age"]
    assert table["rows"][0]["cells"][:4] == ["spy", "SPY", "Ready", 3]
