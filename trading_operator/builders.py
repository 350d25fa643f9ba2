"""Builders: manifests of a TradingSymbol's children, as plain dicts. No I/O."""

from __future__ import annotations

import functools
import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import yaml

from trading_operator import api, deploy_trace, naming
from trading_operator.revisions import Revision, hash_of
from trading_runtime.config import RenderedConfig, RuntimeConfig, Switches, api_key_env

Manifest = dict[str, Any]

DESIRED_HASH_ANNOTATION = f"{api.GROUP}/desired-hash"
RUNTIME_USER = 10001
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
CREDENTIALS_SECRET = "tradeops-runtime-credentials"
"""Optional Secret whose keys (database and Redis URLs, broker keys) become the runtime's environment."""
KUBE_API_PORTS = (443, 6443)
"""The API server as a pod reaches it: the `kubernetes` Service's port, and the port behind it."""


@dataclass(frozen=True)
class Owner:
    """The TradingSymbol that owns the children."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def _metadata(owner: Owner, name: str, symbol: str, extra_labels: dict[str, str] | None = None) -> Manifest:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**naming.common_labels(owner.name, symbol), **(extra_labels or {})},
        "ownerReferences": [owner.reference()],
    }


def with_desired_hash(manifest: Manifest) -> Manifest:
    """Stamp a freshly built manifest (in place) with the hash of its desired content, so a later hand
    edit can be told apart from a change the operator made."""
    digest = hash_of(manifest)
    manifest["metadata"].setdefault("annotations", {})[DESIRED_HASH_ANNOTATION] = digest
    return manifest


def _yaml(data: object) -> str:
    # libyaml's emitter when present: the pure-Python one dominated the reconcile CPU profile.
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=True)


def render_runtime_config(spec: api.TradingSymbolSpec, revision: Revision) -> str:
    """The runtime.yaml of a revision: deterministic, so a rollback mounts the very bytes it ran before."""
    return _rendered_config(spec.symbol, spec.market.value, revision.number,
                            json.dumps(revision.template.config, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _rendered_config(symbol: str, market: str, number: int, config_json: str) -> str:
    # A pure function of its arguments, rendered twice per plan of every symbol: validating and dumping
    # the YAML once per revision took a tenth of the operator's CPU in a converge.
    rendered = RenderedConfig(symbol=symbol, market=market, revision=number,
                              runtime=RuntimeConfig.model_validate(json.loads(config_json)))
    return _yaml(rendered.model_dump(by_alias=True, mode="json"))


@functools.lru_cache(maxsize=4096)
def api_key_sources(config_json: str) -> tuple[tuple[str, str, str], ...]:
    """(environment variable, Secret, key) of each broker API key of a revision's config (cached per config:
    the Deployment is built on every plan)."""
    broker = RuntimeConfig.model_validate(json.loads(config_json)).broker
    if broker is None:
        return ()
    return tuple((api_key_env(k.name), k.secret_key_ref.name, k.secret_key_ref.key) for k in broker.keys)


def config_digest(runtime_yaml: str) -> str:
    """The first 16 hex digits of the file's SHA-256: the runtime reports the same digest of what it loaded
    (`tradeops_runtime_config_info{hash=...}`), so a pod's effective config can be checked against this."""
    return hashlib.sha256(runtime_yaml.encode()).hexdigest()[:16]


def render_switches(trading_enabled: bool) -> str:
    """The switches.yaml the runtime hot-reloads (not hashed: halting never restarts pods)."""
    switches = Switches(trading_enabled=trading_enabled)
    return _yaml(switches.model_dump(by_alias=True, mode="json"))


def build_runtime_config(owner: Owner, spec: api.TradingSymbolSpec, revision: Revision) -> Manifest:
    """A revision's runtime config: an immutable ConfigMap named after its content. Pods of one revision can
    never see another's config (hot-reload has nothing to push), and a rollback remounts the old one."""
    runtime_yaml = render_runtime_config(spec, revision)
    digest = config_digest(runtime_yaml)
    labels = {naming.REVISION_LABEL: str(revision.number), naming.CONFIG_LABEL: digest}
    return with_desired_hash({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, naming.config_name(owner.name, digest), spec.symbol, labels),
        "immutable": True,
        "data": {naming.CONFIG_KEY: runtime_yaml},
    })


def build_switches(owner: Owner, spec: api.TradingSymbolSpec, name: str, trading_enabled: bool) -> Manifest:
    """The mutable switches ConfigMap: only the kill switch, which every pod of the symbol hot-reloads."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, name, spec.symbol),
        "data": {naming.SWITCHES_KEY: render_switches(trading_enabled)},
    }


def _probe(path: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "metrics"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_deployment(
    owner: Owner, spec: api.TradingSymbolSpec, revision: Revision, replicas: int, switches_name: str,
    restarted_at: str | None = None,
) -> Manifest:
    """The Deployment running a revision: non-root, read-only root, no capabilities, probes, scrape port. Its
    config volume projects the revision's immutable config and the symbol's switches into one directory."""
    selector = naming.selector_labels(owner.name)
    pod_labels = {
        **naming.common_labels(owner.name, spec.symbol),
        naming.REVISION_LABEL: str(revision.number),
    }
    config_hash = config_digest(render_runtime_config(spec, revision))
    container = {
        "name": "trading",
        "image": revision.template.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "--config",
            f"{naming.CONFIG_MOUNT}/{naming.CONFIG_KEY}",
            "--switches",
            f"{naming.CONFIG_MOUNT}/{naming.SWITCHES_KEY}",
        ],
        "env": [
            {"name": "TRADEOPS_SYMBOL", "value": spec.symbol},
            {"name": "TRADEOPS_REVISION", "value": str(revision.number)},
            {"name": deploy_trace.TRACEPARENT_ENV, "value": deploy_trace.traceparent(owner.namespace, revision.name)},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "TRADEOPS_LEASE_NAME", "value": naming.lease_name(owner.name)},
            # The broker API's keys, each from its Secret: the ConfigMap names them, never holds them.
            *({"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
              for env, secret, key in api_key_sources(json.dumps(revision.template.config, sort_keys=True))),
        ],
        "envFrom": [{"secretRef": {"name": CREDENTIALS_SECRET, "optional": True}}],
        "ports": [{"name": "metrics", "containerPort": naming.METRICS_PORT, "protocol": "TCP"}],
        # A runtime that refuses to start says why on stderr: that becomes the termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": revision.template.resources,
        "livenessProbe": _probe("/healthz", 10, 3),
        # Probed every second (a local GET): a rollback's stable pod serves within a second of being ready,
        # not up to a period later; ten failures in a row (10 s, as before) before it leaves the endpoints.
        "readinessProbe": _probe("/readyz", 1, 10),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": naming.CONFIG_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        naming.CONFIG_HASH_ANNOTATION: config_hash,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(naming.METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                        **({naming.RESTARTED_AT_ANNOTATION: restarted_at} if restarted_at else {}),
                    },
                },
                "spec": {
                    # The token holds the symbol's Lease (one replica trades); the account may do nothing else.
                    "serviceAccountName": naming.child_name(owner.name),
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUNTIME_USER,
                        "runAsGroup": RUNTIME_USER,
                        "fsGroup": RUNTIME_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "projected": {"sources": [
                            {"configMap": {"name": naming.config_name(owner.name, config_hash),
                                           "items": [{"key": naming.CONFIG_KEY, "path": naming.CONFIG_KEY}]}},
                            {"configMap": {"name": switches_name,
                                           "items": [{"key": naming.SWITCHES_KEY, "path": naming.SWITCHES_KEY}]}},
                        ]}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def build_service_account(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    """The symbol's own ServiceAccount: its token is mounted only to hold the Lease."""
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol)}


def lease_rules(ts_name: str) -> list[Manifest]:
    """What a runtime may do with the API: read and renew its own symbol's Lease, and create it. `create`
    cannot be limited by name (RBAC authorizes a create before there is a name to match); a second create
    of an existing Lease is a 409, so it takes nothing from another symbol."""
    group = ["coordination.k8s.io"]
    return [{"apiGroups": group, "resources": ["leases"], "resourceNames": [naming.lease_name(ts_name)],
             "verbs": ["get", "update"]},
            {"apiGroups": group, "resources": ["leases"], "verbs": ["create"]}]


def build_lease_role(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol),
            "rules": lease_rules(owner.name)}


def build_lease_role_binding(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    name = naming.child_name(owner.name)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _metadata(owner, name, spec.symbol),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}]}


def build_service(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    """The metrics Service Prometheus scrapes and the operator asks for open positions."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.selector_labels(owner.name),
            "ports": [
                {"name": "metrics", "port": naming.METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
            ],
        },
    }


def build_pdb(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    """At most one trading pod voluntarily disrupted at a time (never blocks node drains for good)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": naming.selector_labels(owner.name)},
        },
    }


def broker_ports(config: RuntimeConfig) -> list[int]:
    """The TCP ports of the broker API's endpoints (443 for https, 80 for http, unless the URL names one)."""
    if config.broker is None:
        return []
    ports = set()
    for endpoint in config.broker.endpoints:
        url = urllib.parse.urlsplit(endpoint)
        ports.add(url.port or (443 if url.scheme == "https" else 80))
    return sorted(ports)


def build_network_policy(owner: Owner, spec: api.TradingSymbolSpec) -> Manifest:
    """Ingress only to the metrics port from Prometheus and the operator; egress to DNS, the
    databases, the market-data feed, the broker's API (with a `config.broker`) and (with a `spec.model`) the
    MLflow server."""
    scrapers = [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": naming.MANAGER}}},
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(owner, naming.child_name(owner.name), spec.symbol),
        "spec": {
            "podSelector": {"matchLabels": naming.selector_labels(owner.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": scrapers, "ports": [{"port": naming.METRICS_PORT, "protocol": "TCP"}]}],
            "egress": [
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {"ports": [{"port": 5432, "protocol": "TCP"}, {"port": 6379, "protocol": "TCP"}]},
                {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 8765, "protocol": "TCP"}]},
                # The pinned model version's artifact, fetched from the MLflow server (infra/mlflow_tracking.py).
                *([{"ports": [{"port": 5000, "protocol": "TCP"}]}] if spec.model is not None else []),
                *([{"ports": [{"port": port, "protocol": "TCP"} for port in broker_ports(spec.config)]}]
                  if spec.config.broker is not None else []),
                {"ports": [{"port": port, "protocol": "TCP"} for port in KUBE_API_PORTS]},  # the Lease
            ],
        },
    }


def build_revision(
    owner: Owner, spec: api.TradingSymbolSpec, revision: Revision, generation: int
) -> Manifest:
    """The immutable ControllerRevision holding a revision's template."""
    metadata = _metadata(owner, revision.name, spec.symbol,
                         {naming.REVISION_LABEL: str(revision.number), naming.SPEC_HASH_LABEL: revision.spec_hash})
    metadata["annotations"] = {deploy_trace.TRACEPARENT_ANNOTATION: deploy_trace.traceparent(owner.namespace,
                                                                                             revision.name)}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "revision": revision.number,
        "data": {**revision.template.to_data(), "specHash": revision.spec_hash, "generation": generation},
    }


def build_shadow_children(owner: Owner, spec: api.TradingSymbolSpec, revision: Revision) -> list[Manifest]:
    """A switches ConfigMap (trading off) and a one-pod Deployment running a revision beside stable, on the
    revision's own config ConfigMap; own selector (the stable Service and PDB do not see it), labelled
    `track: shadow` for Prometheus."""
    name = naming.shadow_name(owner.name)
    switches = build_switches(owner, spec, name, trading_enabled=False)
    deployment = build_deployment(owner, spec, revision, 1, name)
    deployment["metadata"]["name"] = name
    # Trading off, it must not compete for the Lease (holding it would stop the stable replicas trading).
    pod_spec = deployment["spec"]["template"]["spec"]
    pod_spec["automountServiceAccountToken"] = False
    container, = pod_spec["containers"]
    container["env"] = [e for e in container["env"] if e["name"] != "TRADEOPS_LEASE_NAME"]
    selector = {**naming.selector_labels(owner.name), "app.kubernetes.io/instance": f"{owner.name}-shadow"}
    deployment["spec"]["selector"] = {"matchLabels": selector}
    template = deployment["spec"]["template"]
    template["metadata"]["labels"].update({**selector, naming.TRACK_LABEL: "shadow"})
    return [with_desired_hash(switches), with_desired_hash(deployment)]


def build_children(
    owner: Owner, spec: api.TradingSymbolSpec, revision: Revision, replicas: int, trading_enabled: bool,
    restarted_at: str | None = None,
) -> list[Manifest]:
    """Every child a running TradingSymbol has besides its revisions' config ConfigMaps (`build_runtime_config`),
    each stamped with its desired hash."""
    switches_name = naming.child_name(owner.name)
    children = [
        build_switches(owner, spec, switches_name, trading_enabled),
        # Before the Deployment: a pod naming a ServiceAccount that does not exist yet is refused.
        build_service_account(owner, spec),
        build_lease_role(owner, spec),
        build_lease_role_binding(owner, spec),
        build_deployment(owner, spec, revision, replicas, switches_name, restarted_at),
        build_service(owner, spec),
        build_pdb(owner, spec),
        build_network_policy(owner, spec),
    ]
    return [with_desired_hash(child) for child in children]
