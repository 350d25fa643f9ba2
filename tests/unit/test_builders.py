"""Child manifests: security defaults, labels, owner references, probes and the config hash."""

from __future__ import annotations

import pytest
import yaml

from trading_operator import api, naming
from trading_operator.builders import (
    DESIRED_HASH_ANNOTATION,
    Owner,
    build_children,
    build_revision,
    build_runtime_config,
    build_shadow_children,
    config_digest,
)
from trading_operator.revisions import Revision, template_hash, template_of
from trading_runtime.config import RenderedConfig, Switches
from trading_runtime.config_watch import config_digest as runtime_config_digest

OWNER = Owner("spy", "trading", "uid-1")


def spec(**overrides):
    return api.TradingSymbolSpec.model_validate(
        {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/x/runtime:1", **overrides}
    )


def revision_of(s: api.TradingSymbolSpec, number: int = 1) -> Revision:
    template = template_of(s)
    return Revision(number, f"spy-{number}", template_hash(template), template)


def children(s=None, replicas=1, trading=True):
    s = s or spec()
    return {c["kind"]: c for c in build_children(OWNER, s, revision_of(s), replicas, trading)}


def pod_spec():
    return children()["Deployment"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"])
def test_every_child_is_owned_labelled_and_stamped(kind):
    child = children()[kind]
    meta = child["metadata"]
    assert meta["ownerReferences"] == [OWNER.reference()]
    assert meta["ownerReferences"][0]["controller"] is True
    for key in ("name", "instance", "component", "part-of", "managed-by"):
        assert f"app.kubernetes.io/{key}" in meta["labels"]
    assert DESIRED_HASH_ANNOTATION in meta["annotations"]


def test_pod_runs_non_root_with_a_read_only_root_and_no_capabilities():
    pod = pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_replicas_hold_the_symbols_lease_with_the_runtime_account_and_nothing_else():
    """One replica trades (the Lease holder, named by the pod); the token is the lease-only ServiceAccount's,
    and the NetworkPolicy lets the pod reach the API server."""
    pod = pod_spec()
    assert pod["serviceAccountName"] == "spy-trading"
    assert pod["automountServiceAccountToken"] is True
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["TRADEOPS_LEASE_NAME"]["value"] == naming.lease_name("spy") == "spy-trading"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    egress = children()["NetworkPolicy"]["spec"]["egress"]
    assert {6443, 443} <= {p["port"] for rule in egress for p in rule["ports"]}


def test_the_shadow_does_not_compete_for_the_lease():
    """Trading off, a shadow holding the Lease would stop the stable replicas: no lease name, no token."""
    s = spec()
    shadow = next(c for c in build_shadow_children(OWNER, s, revision_of(s)) if c["kind"] == "Deployment")
    pod = shadow["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "TRADEOPS_LEASE_NAME" not in {e["name"] for e in pod["containers"][0]["env"]}
    assert "TRADEOPS_LEASE_NAME" in {e["name"] for e in pod_spec()["containers"][0]["env"]}  # not shared


def test_container_has_requests_limits_probes_and_the_scrape_port():
    container = pod_spec()["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"},
                                      "limits": {"cpu": "1", "memory": "512Mi"}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"] == [{"name": "metrics", "containerPort": naming.METRICS_PORT, "protocol": "TCP"}]
    annotations = children()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"


def test_secrets_reach_the_pod_only_through_a_secret_reference():
    container = pod_spec()["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "tradeops-runtime-credentials", "optional": True}}]
    assert all("value" not in e or "PASSWORD" not in e["name"] for e in container["env"])


def test_rendered_config_is_the_runtime_model():
    s = spec()
    config = build_runtime_config(OWNER, s, revision_of(s))
    rendered = RenderedConfig.model_validate(yaml.safe_load(config["data"][naming.CONFIG_KEY]))
    assert rendered.symbol == "SPY"
    assert rendered.revision == 1
    switches = children()["ConfigMap"]["data"]
    assert set(switches) == {naming.SWITCHES_KEY}  # the mutable ConfigMap holds the kill switch only
    assert Switches.model_validate(yaml.safe_load(switches[naming.SWITCHES_KEY])).trading_enabled is True


def test_a_revisions_config_is_an_immutable_content_named_configmap_the_pods_mount():
    s = spec()
    config = build_runtime_config(OWNER, s, revision_of(s))
    runtime_yaml = config["data"][naming.CONFIG_KEY]
    digest = config_digest(runtime_yaml)
    assert config["immutable"] is True
    assert config["metadata"]["name"] == f"spy-config-{digest[:10]}"
    assert config["metadata"]["labels"][naming.CONFIG_LABEL] == digest
    # The runtime reports the same digest of the bytes it loaded.
    assert runtime_config_digest(runtime_yaml.encode()) == digest
    deployment = children()["Deployment"]
    sources = deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert [src["configMap"]["name"] for src in sources] == [config["metadata"]["name"], "spy-trading"]
    assert deployment["spec"]["template"]["metadata"]["annotations"][naming.CONFIG_HASH_ANNOTATION] == digest
    changed = spec(config={"parameters": {"batchSize": 99}})
    assert build_runtime_config(OWNER, changed, revision_of(changed))["metadata"]["name"] != config["metadata"]["name"]


def test_config_hash_follows_the_revision_config_but_not_the_kill_switch():
    def config_hash(c):
        return c["Deployment"]["spec"]["template"]["metadata"]["annotations"][naming.CONFIG_HASH_ANNOTATION]

    base = children()
    assert config_hash(base) == config_hash(children(trading=False))
    changed = children(spec(config={"parameters": {"batchSize": 99}}))
    assert config_hash(base) != config_hash(changed)


def test_selector_is_stable_across_revisions():
    a = children()["Deployment"]["spec"]["selector"]
    b = children(spec(image="ghcr.io/x/runtime:2"))["Deployment"]["spec"]["selector"]
    assert a == b == {"matchLabels": naming.selector_labels("spy")}


def test_network_policy_denies_by_default_and_opens_only_the_metrics_port():
    policy = children()["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [naming.METRICS_PORT]


def test_revision_is_a_controller_revision_with_number_and_template():
    s = spec()
    revision = revision_of(s, 3)
    manifest = build_revision(OWNER, s, revision, generation=7)
    assert manifest["kind"] == "ControllerRevision"
    assert manifest["revision"] == 3
    assert manifest["data"]["image"] == "ghcr.io/x/runtime:1"
    assert manifest["data"]["specHash"] == revision.spec_hash
    assert manifest["metadata"]["labels"][naming.REVISION_LABEL] == "3"
