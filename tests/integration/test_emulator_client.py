"""The emulator through the typed `kubernetes` client APIs (CoreV1, AppsV1, CustomObjects, ApiextensionsV1,
EventsV1, watch), each expectation being what a real API server answers."""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devstack.emulator import Waiting
from tests.integration import emulator_fixtures

emulator_thread = emulator_fixtures.emulator_thread
k8s_client = emulator_fixtures.k8s_client

GROUP, VERSION, PLURAL = "example.com", "v1", "gadgets"


@pytest.fixture
def core(k8s_client) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_client)


@pytest.fixture
def apps(k8s_client) -> client.AppsV1Api:
    return client.AppsV1Api(k8s_client)


@pytest.fixture
def custom(k8s_client) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_client)


@pytest.fixture
def ns(core) -> str:
    name = emulator_fixtures.unique_namespace("c")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def status_of(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)


def wait_until(predicate, timeout: float = 5.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def configmap(name: str, labels: dict[str, str] | None = None, **extra_meta: Any) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels, **extra_meta), data={"k": "v"})


def deployment(name: str, replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x:1")]))))


def gadget_crd(scope: str = "Namespaced") -> client.V1CustomResourceDefinition:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["symbol"], "properties": {
                "symbol": {"type": "string", "pattern": "^[A-Z]+$"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=f"{PLURAL}.{GROUP}"),
        spec=client.V1CustomResourceDefinitionSpec(
            group=GROUP, scope=scope,
            names=client.V1CustomResourceDefinitionNames(plural=PLURAL, singular="gadget", kind="Gadget",
                                                         short_names=["gd"], categories=["all"]),
            versions=[client.V1CustomResourceDefinitionVersion(
                name=VERSION, served=True, storage=True,
                subresources=client.V1CustomResourceSubresources(status={}),
                schema=client.V1CustomResourceValidation(open_apiv3_schema=schema),
                additional_printer_columns=[
                    client.V1CustomResourceColumnDefinition(name="Symbol", type="string", json_path=".spec.symbol"),
                    client.V1CustomResourceColumnDefinition(
                        name="Ready", type="string", json_path='.status.conditions[?(@.type=="Ready")].status'),
                ])]))


def gadget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"symbol": "SPY", **spec}}


@pytest.fixture
def gadgets(k8s_client) -> None:
    client.ApiextensionsV1Api(k8s_client).create_custom_resource_definition(gadget_crd())


# CoreV1 ----------------------------------------------------------------------------------------------

def test_core_objects_get_server_metadata(core, ns):
    created = core.create_namespaced_config_map(ns, configmap("a"))
    meta = created.metadata
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", meta.uid)
    assert meta.namespace == ns
    assert meta.creation_timestamp.tzinfo is not None
    assert created.kind == "ConfigMap"
    assert created.api_version == "v1"
    again = core.patch_namespaced_config_map("a", ns, {"data": {"k": "w"}})
    assert int(again.metadata.resource_version) > int(meta.resource_version)
    assert again.metadata.uid == meta.uid


def test_default_namespaces_exist_and_are_listable(core, ns):
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", ns} <= names
    assert core.read_namespace("default").status.phase == "Active"


def test_delete_answers_something_the_client_can_read(core, ns):
    core.create_namespaced_config_map(ns, configmap("a"))
    core.delete_namespaced_config_map("a", ns)
    with pytest.raises(ApiException) as error:
        core.read_namespaced_config_map("a", ns)
    assert error.value.status == 404
    assert status_of(error.value)["reason"] == "NotFound"
    with pytest.raises(ApiException) as again:
        core.delete_namespaced_config_map("a", ns)
    assert again.value.status == 404


def test_replace_with_a_stale_resource_version_is_a_conflict(core, ns):
    old = core.create_namespaced_config_map(ns, configmap("a"))
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "new"}})
    old.data = {"k": "stale"}
    with pytest.raises(ApiException) as error:
        core.replace_namespaced_config_map("a", ns, old)
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "Conflict"
    current = core.read_namespaced_config_map("a", ns)
    current.data = {"k": "fresh"}
    assert core.replace_namespaced_config_map("a", ns, current).data == {"k": "fresh"}


def test_events_in_both_api_groups(k8s_client, core, ns):
    involved = client.V1ObjectReference(kind="ConfigMap", name="a", namespace=ns, api_version="v1")
    core.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="a."), involved_object=involved, reason="Tested",
        message="hello", type="Normal"))
    core.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="b."), involved_object=client.V1ObjectReference(name="b"),
        reason="Other", message="other", type="Normal"))
    about_a = core.list_namespaced_event(ns, field_selector="involvedObject.name=a").items
    assert [(e.reason, e.message) for e in about_a] == [("Tested", "hello")]
    events = client.EventsV1Api(k8s_client)
    now = datetime.datetime.now(datetime.UTC)
    events.create_namespaced_event(ns, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="e1"), event_time=now, reason="Tested", action="Test",
        reporting_controller="tests", reporting_instance="tests-1", regarding=involved, type="Normal"))
    assert [e.reason for e in events.list_namespaced_event(ns).items] == ["Tested"]


def test_label_and_field_selectors_through_the_client(core, ns):
    core.create_namespaced_config_map(ns, configmap("a", {"tier": "web", "env": "prod"}))
    core.create_namespaced_config_map(ns, configmap("b", {"tier": "db"}))

    def names(**kw: str) -> list[str]:
        return sorted(i.metadata.name for i in core.list_namespaced_config_map(ns, **kw).items)

    assert names(label_selector="tier in (web, cache),env!=dev") == ["a"]
    assert names(label_selector="!env") == ["b"]
    assert names(field_selector="metadata.name!=a") == ["b"]
    assert names(field_selector=f"metadata.namespace={ns},metadata.name=b") == ["b"]
    everywhere = core.list_config_map_for_all_namespaces(label_selector="tier")
    assert {(i.metadata.namespace, i.metadata.name) for i in everywhere.items} == {(ns, "a"), (ns, "b")}
    assert everywhere.kind == "ConfigMapList"


# Watches ---------------------------------------------------------------------------------------------

def test_watch_from_the_list_version_then_live(core, ns):
    core.create_namespaced_config_map(ns, configmap("before"))
    version = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("between"))
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()

    def later() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(ns, configmap("live"))

    writer = threading.Thread(target=later)
    writer.start()
    for event in stream.stream(core.list_namespaced_config_map, ns, resource_version=version, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            stream.stop()
    writer.join()
    assert seen == [("ADDED", "between"), ("ADDED", "live")]


def test_watch_sees_objects_enter_and_leave_a_label_selector(core, ns, emulator_thread):
    core.create_namespaced_config_map(ns, configmap("a", {"pick": "no"}))
    version = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"pick": "yes"}}})
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "2"}})
    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"pick": "no"}}})
    core.patch_namespaced_config_map("a", ns, {"data": {"k": "3"}})  # invisible to the watch
    url = (f"{emulator_thread.url}/api/v1/namespaces/{ns}/configmaps?watch=true&labelSelector=pick%3Dyes"
           f"&resourceVersion={version}&timeoutSeconds=1")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"] == "application/json"
        events = [json.loads(line) for line in response]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_a_namespaced_watch_sees_only_its_namespace(core, ns, emulator_thread):
    other = emulator_fixtures.unique_namespace("other")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    version = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(other, configmap("elsewhere"))
    core.create_namespaced_config_map(ns, configmap("here"))
    url = f"{emulator_thread.url}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={version}&timeoutSeconds=1"
    with urllib.request.urlopen(url, timeout=5) as response:
        names = [json.loads(line)["object"]["metadata"]["name"] for line in response]
    assert names == ["here"]


# Deletion --------------------------------------------------------------------------------------------

def test_finalizers_hold_the_object_with_a_deletion_timestamp(core, ns):
    core.create_namespaced_config_map(ns, configmap("a", finalizers=["example.com/hold"]))
    core.delete_namespaced_config_map("a", ns)
    held = core.read_namespaced_config_map("a", ns)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.deletion_grace_period_seconds == 0
    core.patch_namespaced_config_map("a", ns, {"data": {"still": "writable"}})
    core.patch_namespaced_config_map("a", ns, {"metadata": {"finalizers": None}})
    assert core.list_namespaced_config_map(ns).items == []


def test_garbage_collection_follows_owner_uids_and_respects_finalizers(apps, core, ns):
    owner = apps.create_namespaced_deployment(ns, deployment("web"))
    ref = client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="web", uid=owner.metadata.uid,
                                  controller=True, block_owner_deletion=True)
    core.create_namespaced_config_map(ns, configmap("owned", owner_references=[ref]))
    core.create_namespaced_config_map(ns, configmap("held", owner_references=[ref], finalizers=["x.io/keep"]))
    stale = client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name="gone",
                                    uid="00000000-0000-4000-8000-000000000000")
    core.create_namespaced_config_map(ns, configmap("orphan", owner_references=[stale]))
    apps.delete_namespaced_deployment("web", ns, body=client.V1DeleteOptions(propagation_policy="Background"))
    left = {c.metadata.name: c for c in core.list_namespaced_config_map(ns).items}
    assert set(left) == {"held", "orphan"}
    assert left["held"].metadata.deletion_timestamp is not None
    assert left["orphan"].metadata.deletion_timestamp is None


# Deployments -----------------------------------------------------------------------------------------

def test_deployment_status_follows_the_spec_through_a_watch(apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    stream = watch.Watch()
    statuses, progressing = [], []
    for event in stream.stream(apps.list_namespaced_deployment, ns, timeout_seconds=5,
                               resource_version=created.metadata.resource_version):
        status = event["object"].status
        reasons = [c.reason for c in (status.conditions or []) if c.type == "Progressing"] if status else []
        if reasons and reasons[0] not in progressing:
            progressing.append(reasons[0])
        if status and status.observed_generation == 1 and status.ready_replicas == 2:
            statuses.append(status)
            stream.stop()
    assert statuses[0].ready_replicas == statuses[0].available_replicas == statuses[0].updated_replicas == 2
    assert {c.type: c.status for c in statuses[0].conditions} == {"Available": "True", "Progressing": "True"}
    assert progressing[0] == "NewReplicaSetCreated"
    assert progressing[-1] == "NewReplicaSetAvailable"
    scaled = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 2
    ready = wait_until(lambda: (apps.read_namespaced_deployment("web", ns).status.ready_replicas == 4), what="4 ready")
    assert ready
    assert apps.read_namespaced_deployment_scale("web", ns).status.replicas == 4


def test_status_writes_do_not_touch_the_spec_or_the_generation(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("web"))
    body = {"spec": {"replicas": 7}, "status": {"replicas": 7, "observedGeneration": 5}}
    patched = apps.patch_namespaced_deployment_status("web", ns, body)
    assert patched.spec.replicas == 2
    assert patched.status.observed_generation == 5
    assert patched.metadata.generation == 1
    main = apps.patch_namespaced_deployment("web", ns, {"status": {"replicas": 99}, "metadata": {"labels": {"a": "b"}}})
    assert main.status.replicas != 99
    assert main.metadata.generation == 1


def test_a_container_state_set_from_the_thread_reaches_the_deployment(apps, ns, emulator_thread):
    apps.create_namespaced_deployment(ns, deployment("web", replicas=3))
    wait_until(lambda: (apps.read_namespaced_deployment("web", ns).status.ready_replicas or 0) == 3, what="3 ready")
    pod = sorted(p["metadata"]["name"] for p in emulator_thread.list_objects("v1", "pods", ns))[0]
    emulator_thread.set_container_state(ns, pod, "c", Waiting("CrashLoopBackOff", "back-off 10s"),
                                        restart_count=2)
    wait_until(lambda: apps.read_namespaced_deployment("web", ns).status.ready_replicas == 2, what="2 ready")
    status = apps.read_namespaced_deployment_status("web", ns).status
    assert status.available_replicas == 2
    assert status.unavailable_replicas == 1
    container = core_pod(emulator_thread, ns, pod)["status"]["containerStatuses"][0]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["restartCount"] == 2
    assert [d["metadata"]["name"] for d in emulator_thread.list_objects("apps/v1", "deployments", ns)] == ["web"]


def core_pod(emulator_thread, namespace: str, name: str) -> dict:
    pod = emulator_thread.get_object("v1", "pods", namespace, name)
    assert pod is not None
    return pod


# Custom resources ------------------------------------------------------------------------------------

@pytest.mark.usefixtures("gadgets")
def test_custom_objects_are_defaulted_pruned_and_validated(custom, ns):
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, gadget(
        "a", port="http", note=None, unknown=True, extra={"free": {"form": 1}}))
    assert created["spec"] == {"symbol": "SPY", "replicas": 1, "port": "http", "note": None,
                               "extra": {"free": {"form": 1}}}
    assert created["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as error:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, gadget("spy", replicas=0))
    status = status_of(error.value)
    assert error.value.status == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == ('Gadget.example.com "spy" is invalid: spec.replicas: Invalid value: 0: '
                                 "spec.replicas in body should be greater than or equal to 1")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                            "message": "Invalid value: 0: spec.replicas in body should be "
                                                       "greater than or equal to 1"}]
    with pytest.raises(ApiException) as patched:
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "a", {"spec": {"symbol": "spy"}})
    assert patched.value.status == 422
    assert custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "a")["spec"]["symbol"] == "SPY"


@pytest.mark.usefixtures("gadgets")
def test_custom_status_subresource_and_cluster_wide_list(custom, ns):
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, gadget("a"))
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"symbol": "QQQ"}}
    patched = custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "a", status)
    assert patched["status"]["conditions"][0]["status"] == "True"
    assert patched["spec"]["symbol"] == "SPY"
    assert patched["metadata"]["generation"] == 1
    bumped = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "a", {"spec": {"replicas": 2}})
    assert bumped["metadata"]["generation"] == 2
    listing = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert listing["kind"] == "GadgetList"
    assert listing["apiVersion"] == f"{GROUP}/{VERSION}"
    assert [(i["kind"], i["metadata"]["namespace"]) for i in listing["items"]] == [("Gadget", ns)]


def test_crd_lifecycle_registers_and_unregisters(k8s_client, custom, ns):
    extensions = client.ApiextensionsV1Api(k8s_client)
    created = extensions.create_custom_resource_definition(gadget_crd())
    conditions = {c.type: c.status for c in created.status.conditions}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    resources = client.ApisApi(k8s_client).get_api_versions()
    assert GROUP in {g.name for g in resources.groups}
    listed = client.CustomObjectsApi(k8s_client).get_api_resources(GROUP, VERSION)
    entry = next(r for r in listed.resources if r.name == PLURAL)
    assert (entry.kind, entry.namespaced, entry.short_names, entry.categories) == ("Gadget", True, ["gd"], ["all"])
    assert f"{PLURAL}/status" in [r.name for r in listed.resources]
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, gadget("a"))
    extensions.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(ApiException) as error:
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
    assert error.value.status == 404


@pytest.mark.usefixtures("gadgets")
def test_tables_only_when_asked(k8s_client, custom, ns, emulator_thread):
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, gadget("a"))
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "a", {
        "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}})

    def get(path: str, accept: str) -> dict[str, Any]:
        request = urllib.request.Request(emulator_thread.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    table = get(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", table_accept)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Symbol", "Ready"]
    assert table["rows"][0]["cells"] == ["a", "SPY", "True"]
    plain = get(f"/api/v1/namespaces/{ns}", table_accept)
    assert [c["name"] for c in plain["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert get(f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}", "application/json")["kind"] == "GadgetList"


# Scale -----------------------------------------------------------------------------------------------

def test_a_thousand_objects_stay_fast(core, ns, emulator_thread):
    started = time.monotonic()
    for i in range(1000):
        core.create_namespaced_config_map(ns, configmap(f"cm-{i}", {"batch": str(i % 10)}))
    assert len(core.list_namespaced_config_map(ns, label_selector="batch=3").items) == 100
    assert time.monotonic() - started < 20
    assert len(emulator_thread.handler._requests) <= 2 * emulator_thread.handler.request_log_limit
