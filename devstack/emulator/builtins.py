"""Admission of the built-in kinds the controllers act on: the defaults the API server fills in
(`pkg/apis/apps/v1/defaults.go`, `pkg/apis/core/v1/defaults.go`, `pkg/apis/batch/v1/defaults.go` and the
Job strategy's generated selector) and the validation errors users hit (`pkg/apis/apps/validation`,
`pkg/apis/batch/validation`, immutable ConfigMaps and Secrets in `pkg/apis/core/validation`). Other
built-in kinds are stored as sent."""

from __future__ import annotations

import copy
import json
from typing import Any

from devstack.emulator.intstr import IntOrString, parse_int_or_percent
from devstack.emulator.podstatus import qos_class
from devstack.emulator.selectors import selector_matches

Obj = dict[str, Any]
Cause = dict[str, str]


def _probe_defaults(probe: Obj) -> None:
    for name, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                        ("failureThreshold", 3)):
        probe.setdefault(name, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _container_defaults(container: Obj) -> None:
    container.setdefault("resources", {})  # a struct in Go: always serialised
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    container.setdefault("imagePullPolicy", "Always" if not tagged or image.endswith(":latest") else "IfNotPresent")
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(probe), dict):
            _probe_defaults(container[probe])


def pod_spec_defaults(spec: Obj) -> None:
    """SetDefaults_PodSpec and its containers, volumes and probes."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        _container_defaults(container)
    for volume in spec.get("volumes") or []:
        for kind in ("configMap", "secret"):
            if isinstance(volume.get(kind), dict):
                volume[kind].setdefault("defaultMode", 420)
        if isinstance(volume.get("projected"), dict):
            volume["projected"].setdefault("defaultMode", 420)


JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def job_defaults(job: Obj) -> None:
    """SetDefaults_Job, and the selector and template labels the Job strategy generates
    (generateSelector: the Job's uid, unless `manualSelector`)."""
    spec = job.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    pod_spec_defaults(template.setdefault("spec", {}))
    meta = job["metadata"]
    if not meta.get("labels") and template["metadata"].get("labels"):
        meta["labels"] = dict(template["metadata"]["labels"])
    uid = meta.get("uid")
    if uid and not spec.get("manualSelector") and not spec.get("selector"):
        labels = template["metadata"].setdefault("labels", {})
        for name_label, uid_label in zip(JOB_NAME_LABELS, JOB_UID_LABELS, strict=True):
            labels[name_label], labels[uid_label] = meta["name"], uid
        spec["selector"] = {"matchLabels": {JOB_UID_LABELS[0]: uid}}


def default(group: str, kind: str, obj: Obj) -> Obj:
    """The object with the API server's defaults (a new dict; `obj` is not changed)."""
    if (group, kind) == ("batch", "Job"):
        job = copy.deepcopy(obj)
        job_defaults(job)
        return job
    if (group, kind) not in (("apps", "Deployment"), ("apps", "ReplicaSet"), ("", "Pod")):
        return obj
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    if kind == "Pod":
        pod_spec_defaults(spec)
        spec.setdefault("enableServiceLinks", True)
        return out
    spec.setdefault("replicas", 1)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("creationTimestamp", None)  # Go's zero metav1.Time
    pod_spec_defaults(template.setdefault("spec", {}))
    if kind == "Deployment":
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    return out


def initial_status(group: str, kind: str, obj: Obj) -> Obj | None:
    """The status the API server gives a new object of a kind whose strategy sets one (PrepareForCreate)."""
    if (group, kind) == ("", "Pod"):
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec", {}))}
    if (group, kind) == ("", "Namespace"):
        return {"phase": "Active"}
    return None


def _go(value: Any) -> str:
    """Values in messages, roughly as the API server's Go formatting shows them."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _fencepost(field: str, value: IntOrString | None) -> list[Cause]:
    if value is None:
        return []
    try:
        number, percent = parse_int_or_percent(value)
    except ValueError as exc:
        return [{"reason": "FieldValueInvalid", "field": field, "message": f"Invalid value: {_go(value)}: {exc}"}]
    if number < 0:
        return [{"reason": "FieldValueInvalid", "field": field,
                 "message": f"Invalid value: {number}: must be greater than or equal to 0"}]
    if percent and number > 100:
        return [{"reason": "FieldValueInvalid", "field": field,
                 "message": f"Invalid value: {_go(value)}: must not be greater than 100%"}]
    return []


def _validate_immutable(obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateConfigMapUpdate / ValidateSecretUpdate: an immutable ConfigMap or Secret keeps its data."""
    if old is None or not old.get("immutable"):
        return []
    message = "Forbidden: field is immutable when `immutable` is set"
    fields = ["immutable"] if not obj.get("immutable") else []
    fields += [name for name in ("data", "binaryData", "stringData") if obj.get(name) != old.get(name)]
    return [{"reason": "FieldValueForbidden", "field": name, "message": message} for name in fields]


def validate(group: str, kind: str, obj: Obj, old: Obj | None) -> list[Cause]:
    """ValidateDeployment / ValidateReplicaSet / the immutability of ConfigMaps and Secrets: what users get
    a 422 for."""
    if (group, kind) in (("", "ConfigMap"), ("", "Secret")):
        return _validate_immutable(obj, old)
    if (group, kind) == ("batch", "Job"):
        return _validate_job(obj, old)
    if (group, kind) not in (("apps", "Deployment"), ("apps", "ReplicaSet")):
        return []
    spec = obj.get("spec", {})
    causes: list[Cause] = []
    selector = spec.get("selector")
    template_labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
    if not selector:
        causes.append({"reason": "FieldValueRequired", "field": "spec.selector", "message": "Required value"})
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append({"reason": "FieldValueInvalid", "field": "spec.selector",
                       "message": f"Invalid value: {_go(selector)}: empty selector is invalid for deployment"})
    elif not selector_matches(selector, template_labels):
        causes.append({"reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                       "message": f"Invalid value: {_go(template_labels)}: `selector` does not match template "
                                  "`labels`"})
    if old is not None and old.get("spec", {}).get("selector") != selector:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.selector",
                       "message": f"Invalid value: {_go(selector)}: field is immutable"})
    if int(spec.get("replicas", 1)) < 0:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.replicas",
                       "message": f"Invalid value: {spec['replicas']}: must be greater than or equal to 0"})
    if not spec.get("template", {}).get("spec", {}).get("containers"):
        causes.append({"reason": "FieldValueRequired", "field": "spec.template.spec.containers",
                       "message": "Required value"})
    if kind == "Deployment":
        causes += _validate_deployment_strategy(spec)
    return causes


def _validate_job(job: Obj, old: Obj | None) -> list[Cause]:
    """ValidateJob: a Job's Pods restart OnFailure or Never; backoffLimit and activeDeadlineSeconds are
    not negative (the deadline positive); the Pod template and selector are immutable."""
    spec = job.get("spec", {})
    causes: list[Cause] = []
    policy = spec.get("template", {}).get("spec", {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        causes.append({"reason": "FieldValueNotSupported", "field": "spec.template.spec.restartPolicy",
                       "message": f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"'})
    if not spec.get("template", {}).get("spec", {}).get("containers"):
        causes.append({"reason": "FieldValueRequired", "field": "spec.template.spec.containers",
                       "message": "Required value"})
    if int(spec.get("backoffLimit", 0)) < 0:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.backoffLimit",
                       "message": f"Invalid value: {spec['backoffLimit']}: must be greater than or equal to 0"})
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and int(deadline) <= 0:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.activeDeadlineSeconds",
                       "message": f"Invalid value: {deadline}: must be greater than 0"})
    if old is not None:
        for name in ("template", "selector"):
            if old.get("spec", {}).get(name) != spec.get(name):
                causes.append({"reason": "FieldValueInvalid", "field": f"spec.{name}",
                               "message": f"Invalid value: {_go(spec.get(name))}: field is immutable"})
    return causes


def _validate_deployment_strategy(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    strategy = spec.get("strategy", {})
    if strategy.get("type") not in ("RollingUpdate", "Recreate"):
        causes.append({"reason": "FieldValueNotSupported", "field": "spec.strategy.type",
                       "message": f'Unsupported value: "{strategy.get("type")}": supported values: '
                                  '"Recreate", "RollingUpdate"'})
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling is not None:
        causes.append({"reason": "FieldValueForbidden", "field": "spec.strategy.rollingUpdate",
                       "message": "Forbidden: may not be specified when strategy `type` is 'Recreate'"})
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict):
        surge, unavailable = rolling.get("maxSurge"), rolling.get("maxUnavailable")
        causes += _fencepost("spec.strategy.rollingUpdate.maxSurge", surge)
        causes += _fencepost("spec.strategy.rollingUpdate.maxUnavailable", unavailable)
        if not causes and _is_zero(surge) and _is_zero(unavailable):
            causes.append({"reason": "FieldValueInvalid", "field": "spec.strategy.rollingUpdate.maxUnavailable",
                           "message": f"Invalid value: {_go(unavailable)}: may not be 0 when `maxSurge` is 0"})
    deadline, min_ready = spec.get("progressDeadlineSeconds"), int(spec.get("minReadySeconds", 0))
    if deadline is not None and int(deadline) <= min_ready:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.progressDeadlineSeconds",
                       "message": f"Invalid value: {deadline}: must be greater than minReadySeconds"})
    if int(spec.get("revisionHistoryLimit", 0)) < 0:
        causes.append({"reason": "FieldValueInvalid", "field": "spec.revisionHistoryLimit",
                       "message": f"Invalid value: {spec['revisionHistoryLimit']}: must be greater than or "
                                  "equal to 0"})
    return causes


def _is_zero(value: IntOrString | None) -> bool:
    return value is None or parse_int_or_percent(value)[0] == 0
