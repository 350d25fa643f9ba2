"""The reports and the audit trail in the cluster: the audit recorder (a Deployment watching the API with a
read-only ClusterRole), the scheduled reports and the monthly records archive (CronJobs running the
tools image, which carries opsctl, the audit trail and the reports), a volume the reports are written to,
and the monthly records archive into the backups bucket (infra/backups.py: Object Lock on, and the lifecycle
rule that moves archived records to archive storage after the accessible years). The jobs reach the bucket the way the
backup jobs do (the backup ServiceAccount: IRSA in prod, the access-key Secret in dev)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import backups, hardening
from infra.control_plane import prometheus_url
from infra.settings import Settings

RECORDER = "tradeops-audit-recorder"
RECORDER_COMPONENT = "audit"
REPORTS_COMPONENT = "reports"
REPORTS = "tradeops-reports"
CREDENTIALS = "tradeops-reports-credentials"
JOB_UID = 10001  # the tools image's user
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


def pod(settings: Settings, command: list[str], bucket: pulumi.Input[str], *, recorder: bool,
        reports_volume: bool) -> dict[str, Any]:
    """A hardened pod of the tools image; the database URL only from the Secret. The recorder gets its own
    ServiceAccount's API token and no S3 credentials; a job gets the bucket as the backup jobs do."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if reports_volume:
        mounts.append({"name": "reports", "mountPath": "/reports"})
        volumes.append({"name": "reports", "persistentVolumeClaim": {"claimName": REPORTS}})
    env: list[dict[str, Any]] = [{"name": "TRADEOPS_PROMETHEUS_URL", "value": prometheus_url(settings)},
                                 {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"}]
    env_from: list[dict[str, Any]] = [{"secretRef": {"name": CREDENTIALS}}]
    if not recorder:
        s3_env, s3_env_from = backups.s3_access(settings, bucket)
        env, env_from = [*env, *s3_env], [*env_from, *s3_env_from]
    return {
        "serviceAccountName": RECORDER if recorder else backups.SERVICE_ACCOUNT,
        # The recorder watches the API; a job needs a token only for IRSA.
        "automountServiceAccountToken": recorder or settings.uses_irsa,
        "restartPolicy": "Always" if recorder else "Never",
        "securityContext": hardening.pod_security(JOB_UID),
        "containers": [{
            "name": "main",
            "image": settings.tools_image,
            "command": command,
            "env": env,
            "envFrom": env_from,
            "resources": hardening.resources("100m", "256Mi", "1", "1Gi"),
            "securityContext": hardening.container_security(),
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }


def reports(settings: Settings, ns: dict[str, k8s.core.v1.Namespace], database_url: pulumi.Input[str],
            access: backups.Backups) -> None:
    """The recorder, its RBAC, the reports volume, the credentials Secret and the CronJobs."""
    bucket = access.bucket.bucket
    namespace = settings.data_namespace
    after = pulumi.ResourceOptions(depends_on=[ns["data"]])
    secret = k8s.core.v1.Secret(
        "reports-credentials", metadata={"name": CREDENTIALS, "namespace": namespace,
                                         "labels": hardening.labels(CREDENTIALS, "credentials")},
        type="Opaque", string_data={"TRADEOPS_DATABASE_URL": database_url},
        opts=pulumi.ResourceOptions(depends_on=[ns["data"]], additional_secret_outputs=["stringData", "data"]))
    k8s.core.v1.ServiceAccount("audit-recorder-sa", metadata={
        "name": RECORDER, "namespace": namespace, "labels": hardening.labels(RECORDER, RECORDER_COMPONENT)},
        automount_service_account_token=False, opts=after)
    role = k8s.rbac.v1.ClusterRole("audit-recorder-role", metadata={
        "name": RECORDER, "labels": hardening.labels(RECORDER, RECORDER_COMPONENT)}, rules=recorder_rules())
    k8s.rbac.v1.ClusterRoleBinding(
        "audit-recorder-binding", metadata={"name": RECORDER, "labels": hardening.labels(RECORDER, RECORDER_COMPONENT)},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RECORDER},
        subjects=[{"kind": "ServiceAccount", "name": RECORDER, "namespace": namespace}],
        opts=pulumi.ResourceOptions(depends_on=[role]))
    labels = hardening.labels(RECORDER, RECORDER_COMPONENT)
    k8s.apps.v1.Deployment("audit-recorder", metadata={"name": RECORDER, "namespace": namespace, "labels": labels},
                           spec={"replicas": 1, "strategy": {"type": "Recreate"},
                                 "selector": {"matchLabels": {"app.kubernetes.io/name": RECORDER}},
                                 "template": {"metadata": {"labels": labels},
                                              "spec": pod(settings, RECORDER_COMMAND, bucket, recorder=True,
                                                          reports_volume=False)}},
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
        job_labels = hardening.labels(name, REPORTS_COMPONENT)
        k8s.batch.v1.CronJob(resource, metadata={"name": name, "namespace": namespace, "labels": job_labels}, spec={
            "schedule": schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 5,
            "jobTemplate": {"spec": {"backoffLimit": 2, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 86400,
                                     "template": {"metadata": {"labels": job_labels},
                                                  "spec": pod(settings, command, bucket, recorder=False,
                                                              reports_volume=volume)}}}},
            opts=pulumi.ResourceOptions(depends_on=[secret, claim, *access.depends_on]))
