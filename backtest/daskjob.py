"""Batch backtests in a cluster: a `DaskJob` of the dask-kubernetes operator (installed by the Pulumi
program, infra/dask_operator.py). The operator starts a scheduler and `workers` worker pods, then the job
pod, which runs `opsctl backtest ...` with `DASK_SCHEDULER_ADDRESS` set to that scheduler, so the tasks
run on the cluster's workers; it prints the JSON result to its log and the operator removes the cluster
when the job ends.

Every pod runs as a non-root user with a read-only root filesystem (an emptyDir for scratch space), no
capabilities, the RuntimeDefault seccomp profile and no service-account token; recorded data comes from a
PersistentVolumeClaim mounted read-only at /data. `opsctl backtest daskjob` prints the manifest."""

from __future__ import annotations

from typing import Any

API_VERSION = "kubernetes.dask.org/v1"
USER = 10001
DATA_PATH = "/data"
SCRATCH = "/tmp"


def _container(name: str, image: str, args: list[str], cpu: str, memory: str, data_claim: str | None,
               ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH}]
    if data_claim:
        mounts.append({"name": "data", "mountPath": DATA_PATH, "readOnly": True})
    container: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent", "args": args,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    if ports:
        container["ports"] = ports
    return container


def _pod(container: dict[str, Any], data_claim: str | None, restart: str | None = None) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}]
    if data_claim:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": data_claim, "readOnly": True}})
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": USER, "runAsGroup": USER, "fsGroup": USER,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if restart:
        pod["restartPolicy"] = restart
    return pod


def daskjob(name: str, namespace: str, image: str, command: list[str], workers: int = 2,
            data_claim: str | None = None, worker_cpu: str = "1", worker_memory: str = "2Gi") -> dict[str, Any]:
    """The DaskJob running `opsctl backtest <command>` (e.g. `["walk-forward", "--file", "/data/spy.parquet",
    "--grid", "strategy.entryScore=0.5,0.6", "--json"]`) on `workers` workers of one thread each."""
    if workers < 1:
        raise ValueError("a DaskJob needs at least one worker")
    labels = {"app.kubernetes.io/name": "tradeops-backtest", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/part-of": "tradeops", "app.kubernetes.io/component": "backtest"}
    job = _container("job", image, ["opsctl", "backtest", *command], "500m", "1Gi", data_claim)
    worker = _container("worker", image, ["dask-worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1",
                                          "--local-directory", SCRATCH, "--dashboard-address", "8788"],
                        worker_cpu, worker_memory, data_claim,
                        [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}])
    scheduler = _container("scheduler", image, ["dask-scheduler"], "500m", "1Gi", None,
                           [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                            {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}])
    probe = {"httpGet": {"port": "http-dashboard", "path": "/health"}}
    scheduler["readinessProbe"] = {**probe, "initialDelaySeconds": 5, "periodSeconds": 10}
    scheduler["livenessProbe"] = {**probe, "initialDelaySeconds": 15, "periodSeconds": 20}
    return {
        "apiVersion": API_VERSION, "kind": "DaskJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "job": {"spec": _pod(job, data_claim, restart="Never")},
            "cluster": {"spec": {
                "worker": {"replicas": workers, "spec": _pod(worker, data_claim)},
                "scheduler": {
                    "spec": _pod(scheduler, None),
                    "service": {"type": "ClusterIP",
                                "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                                "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786,
                                           "targetPort": "tcp-comm"},
                                          {"name": "http-dashboard", "protocol": "TCP", "port": 8787,
                                           "targetPort": "http-dashboard"}]},
                },
            }},
        },
    }
