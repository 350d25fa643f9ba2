"""`opsctl version`: this client's version, the operator's (the image its Deployment runs) and the
TradingSymbol API versions the cluster's CRD serves, beside the one this client speaks."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from opsctl import printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.kube import ApiError, Obj
from opsctl.options import Cluster, Output, Target
from trading_operator.identity import GROUP, PLURAL, VERSION

app = typer.Typer()
OPERATOR_SELECTOR = "app.kubernetes.io/name=tradeops-operator"


def client_version() -> str:
    try:
        return metadata.version("tradeops")
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def operator_info(deployments: list[Obj]) -> Obj | None:
    """The operator's image, version (the image's tag or digest) and readiness, from its Deployment."""
    if not deployments:
        return None
    deployment = deployments[0]
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    tag = image.rpartition("@")[2] if "@" in image else image.rpartition(":")[2] if ":" in image.rpartition("/")[2] \
        else "latest"
    status = deployment.get("status") or {}
    return {"deployment": f"{deployment['metadata'].get('namespace')}/{deployment['metadata']['name']}",
            "image": image, "version": tag,
            "ready": f"{status.get('readyReplicas', 0)}/{(deployment.get('spec') or {}).get('replicas', 1)}"}


def crd_info(crd: Obj | None) -> Obj | None:
    if crd is None:
        return None
    versions = (crd.get("spec") or {}).get("versions") or []
    return {"name": crd["metadata"]["name"],
            "served": [v["name"] for v in versions if v.get("served")],
            "storage": next((v["name"] for v in versions if v.get("storage")), None)}


def _optional(target: Target, path: str, query: dict[str, str] | None = None) -> Obj | None:
    """An object, or None when it is not there (404) or this user may not read it (401/403)."""
    try:
        return dict(target.kube.get(path, query))
    except ApiError as error:
        if error.status in (401, 403, 404):
            return None
        raise


@verb(app)
def version(
    cluster: Cluster,
    out: Output,
    client: Annotated[bool, typer.Option("--client", help="Only this client's version (no cluster needed)")] = False,
    operator_namespace: Annotated[str, typer.Option(help="Namespace of the operator's Deployment")]
    = "tradeops-system",
) -> None:
    """Client, operator and CRD versions. The operator is found by its Deployment's label
    app.kubernetes.io/name=tradeops-operator; -o json|yaml: {clientVersion, apiVersion, operator, crd}."""
    data: Obj = {"clientVersion": client_version(), "apiVersion": f"{GROUP}/{VERSION}"}
    if not client:
        target = cluster.connect()
        listed = _optional(target, f"/apis/apps/v1/namespaces/{operator_namespace}/deployments",
                           {"labelSelector": OPERATOR_SELECTOR})
        data["operator"] = operator_info(list((listed or {}).get("items") or []))
        data["crd"] = crd_info(_optional(target, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                                 f"{PLURAL}.{GROUP}"))
    if printing.emit(out, data):
        return
    printing.say(f"Client Version: {data['clientVersion']} (speaks {data['apiVersion']})")
    if client:
        return
    operator, crd = data["operator"], data["crd"]
    printing.say("Operator Version: " + (f"{operator['version']} ({operator['image']}, Deployment "
                                    f"{operator['deployment']}, {operator['ready']} ready)" if operator else
                                    f"unknown: no Deployment labelled {OPERATOR_SELECTOR} in namespace "
                                    f"{operator_namespace} (--operator-namespace; or it runs outside the cluster)"))
    printing.say("CRD Versions: " + (f"{', '.join(crd['served'])} served, {crd['storage']} stored ({crd['name']})"
                                if crd else "not installed (kubectl apply -f deploy/crds/)"))
    if crd and VERSION not in crd["served"]:
        raise OpsctlError(ExitCode.REJECTED, f"the cluster does not serve {GROUP}/{VERSION}, the version this "
                                             "client speaks: upgrade the CRD or use a matching opsctl")
