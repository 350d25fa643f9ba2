"""The reports and the audit trail in the cluster: the audit recorder (a Deployment watching the API with a
read-only ClusterRole), the scheduled reports and the monthly records archive (CronJobs running the
tools image, which carries opsctl, the audit trail and the reports), a volume the reports are written to,
and the lifecycle rule that moves archived records to archive storage after the accessible years.

Not wired into __main__.py yet (see infra/README.md): `reports(settings, namespaces, database_url, bucket)`
registers it all; the backups bucket needs Object Lock and `records_lifecycle_rule()`."""

from __future__ import annotations

import pathlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import hardening
from infra.control_plane import prometheus_url
from infra.settings import Settings

RECORDER = "tradeops-audit-recorder"
REPORTS = "tradeops-reports"
CREDENTIALS = "tradeops-reports-credentials"
JOB_UID = 10001  # the tools image's user
RECOVERY_POLICY = pathlib.Path(__file__).resolve().parents[1] / "policies" / "defaults" / "recovery.yaml"
SCHEDULES = {
    "performance": "0 6 1 * *",   # the first of the month: the last 30 days
    "compliance": "0 7 2 1 *",    # every January: the last year, for the annual self-assessment
    "cost": "0 5 * * *",          # daily: the month's projection
}
ARCHIVE_SCHEDULE = "0 4 2 * *"    # the second of the month: last month's records
WINDOWS = {"performance": "-30d", "compliance": "-365d", "cost": "-30d"}


def recorder_rules() -> list[dict[str, Any]]:
    """What the recorder reads, and nothing else: it only lists and watches."""
    verbs = ["get", "list", "watch"]
    return [{"apiGroups": ["trading.tradeops.io"], "resources": ["tradingsymbols"], "verbs": verbs},
            {"apiGroups": ["apps"], "resources": ["controllerrevisions"], "verbs": verbs},
            {"apiGroups": [""], "resources": ["events"], "verbs": verbs}]


def report_command(report: str) -> list[str]:
    """`opsctl report <report>` over its window into a dated directory of the reports volume."""
    extra = " --bucket \"$TRADEOPS_BACKUP_BUCKET\"" if report == "cost" else ""
    return ["sh", "-c", f"exec opsctl report {report} --from {WINDOWS[report]} --to now{extra} "
                        f"--out /reports/{report}/$(date -u +%Y-%m-%d)"]


ARCHIVE_COMMAND = ["opsctl", "audit", "archive"]
RECORDER_COMMAND = ["python", "-m", "audit", "record"]


def pod(settings: Settings, command: list[str], bucket: pulumi.Input[str], *, service_account: str | None,
        restart: str, reports_volume: bool) -> dict[str, Any]:
    """A hardened pod of the tools image; the database URL only from the Secret."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if reports_volume:
        mounts.append({"name": "reports", "mountPath": "/reports"})
        volumes.append({"name": "reports", "persistentVolumeClaim": {"claimName": REPORTS}})
    spec: dict[str, Any] = {
        "automountServiceAccountToken": service_account is not None,
        "restartPolicy": restart,
        "securityContext": hardening.pod_security(JOB_UID),
        "containers": [{
            "name": "main",
            "image": settings.tools_image,
            "command": command,
            "env": [{"name": "TRADEOPS_PROMETHEUS_URL", "value": prometheus_url(settings)},
                    {"name": "TRADEOPS_BACKUP_BUCKET", "value": bucket},
                    {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"}],
            "envFrom": [{"secretRef": {"name": CREDENTIALS}}],
            "resources": hardening.resources("100m", "256Mi", "1", "1Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    return spec


def records_lifecycle_rule(prefix: str = "tradeops") -> dict[str, Any]:
    """The backups bucket's rule for archived records, from the RecoveryPolicy's `records`: standard storage
    for the accessible years, archive storage after; noncurrent versions expire once their lock has ended."""
    spec = yaml.safe_load(RECOVERY_POLICY.read_text())["spec"].get("records") or {}
    keep, accessible = int(spec.get("keepYears", 6)), int(spec.get("accessibleYears", 2))
    rule: dict[str, Any] = {"id": "records", "status": "Enabled", "filter": {"prefix": f"{prefix}/records/"},
                            "noncurrent_version_expiration": {"noncurrent_days": keep * 366 + 31}}
    if accessible < keep:
        rule["transitions"] = [{"days": accessible * 365, "storage_class": "GLACIER"}]
    return rule


def reports(settings: Settings, ns: dict[str, k8s.core.v1.Namespace], database_url: pulumi.Input[str],
            bucket: pulumi.Input[str]) -> None:
    """The recorder, its RBAC, the reports volume, the credentials Secret and the CronJobs."""
    namespace = settings.data_namespace
    after = pulumi.ResourceOptions(depends_on=[ns["data"]])
    secret = k8s.core.v1.Secret(
        "reports-credentials", metadata={"name": CREDENTIALS, "namespace": namespace,
                                         "labels": hardening.labels(CREDENTIALS, "credentials")},
        type="Opaque", string_data={"TRADEOPS_DATABASE_URL": database_url},
        opts=pulumi.ResourceOptions(depends_on=[ns["data"]], additional_secret_outputs=["stringData", "data"]))
    k8s.core.v1.ServiceAccount("audit-recorder-sa", metadata={
        "name": RECORDER, "namespace": namespace, "labels": hardening.labels(RECORDER, "audit")},
        automount_service_account_token=False, opts=after)
    role = k8s.rbac.v1.ClusterRole("audit-recorder-role", metadata={
        "name": RECORDER, "labels": hardening.labels(RECORDER, "audit")}, rules=recorder_rules())
    k8s.rbac.v1.ClusterRoleBinding(
        "audit-recorder-binding", metadata={"name": RECORDER, "labels": hardening.labels(RECORDER, "audit")},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RECORDER},
        subjects=[{"kind": "ServiceAccount", "name": RECORDER, "namespace": namespace}],
        opts=pulumi.ResourceOptions(depends_on=[role]))
    labels = hardening.labels(RECORDER, "audit")
    k8s.apps.v1.Deployment("audit-recorder", metadata={"name": RECORDER, "namespace": namespace, "labels": labels},
                           spec={"replicas": 1, "strategy": {"type": "Recreate"},
                                 "selector": {"matchLabels": {"app.kubernetes.io/name": RECORDER}},
                                 "template": {"metadata": {"labels": labels},
                                              "spec": pod(settings, RECORDER_COMMAND, bucket, service_account=RECORDER,
                                                          restart="Always", reports_volume=False)}},
                           opts=pulumi.ResourceOptions(depends_on=[secret]))
    claim = k8s.core.v1.PersistentVolumeClaim(
        "reports-volume", metadata={"name": REPORTS, "namespace": namespace,
                                    "labels": hardening.labels(REPORTS, "reports")},
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
              **({"storageClassName": settings.storage_class} if settings.storage_class else {})}, opts=after)
    jobs = {f"report-{name}": (f"{REPORTS}-{name}", schedule, report_command(name), True)
            for name, schedule in SCHEDULES.items()}
    jobs["records-archive"] = ("tradeops-records-archive", ARCHIVE_SCHEDULE, ARCHIVE_COMMAND, False)
    for resource, (name, schedule, command, volume) in jobs.items():
        job_labels = hardening.labels(name, "reports")
        k8s.batch.v1.CronJob(resource, metadata={"name": name, "namespace": namespace, "labels": job_labels}, spec={
            "schedule": schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 86400,
                                     "template": {"metadata": {"labels": job_labels},
                                                  "spec": pod(settings, command, bucket, service_account=None,
                                                              restart="Never", reports_volume=volume)}}}},
            opts=pulumi.ResourceOptions(depends_on=[secret, claim]))
