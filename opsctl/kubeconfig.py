"""Where the API server is and how to authenticate, from kubeconfig files (kubectl's rules) or, inside a
pod, the service account. A broken or incomplete kubeconfig is one line naming the file, the line or the
entry, and the flag or variable to change.

opsctl reads kubeconfig itself rather than through the `kubernetes` package: importing that package costs
about 0.2 s (its generated models), more than the whole budget of `opsctl get`."""

from __future__ import annotations

import base64
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml

from opsctl.errors import ExitCode, OpsctlError

DEFAULT_PATH = pathlib.Path("~/.kube/config")
SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
FLAGS = "pass --kubeconfig or set KUBECONFIG"


class KubeconfigError(OpsctlError):
    def __init__(self, message: str) -> None:
        super().__init__(ExitCode.UNREACHABLE, message)


@dataclass(frozen=True)
class ExecPlugin:
    """A client.authentication.k8s.io credential plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"


@dataclass(frozen=True)
class Endpoint:
    """One API server and the credentials to use with it."""

    server: str
    namespace: str
    source: str
    """Where this came from, for error messages: `context "kind" of /home/me/.kube/config`."""
    user: str | None = None
    """The kubeconfig user's name (who opsctl says it acts for, in the audit trail)."""
    ca_file: str | None = None
    ca_data: bytes | None = None
    cert_file: str | None = None
    cert_data: bytes | None = None
    key_file: str | None = None
    key_data: bytes | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    exec_plugin: ExecPlugin | None = None


def _read_yaml(path: pathlib.Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise KubeconfigError(f"kubeconfig {path} cannot be read ({error.strerror}): {FLAGS}") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = error.problem or error.context or "not YAML"
        raise KubeconfigError(f"kubeconfig {path}{where}: {problem}: fix the file, or {FLAGS}") from None
    except yaml.YAMLError as error:
        raise KubeconfigError(f"kubeconfig {path}: {error}: fix the file, or {FLAGS}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a kubeconfig (a YAML mapping): {FLAGS}")
    return data


@dataclass
class _Merged:
    """kubectl's merge of several files: the first file to name an entry (or the current context) wins."""

    files: list[pathlib.Path]
    current_context: str | None = None
    entries: dict[str, dict[str, tuple[dict[str, Any], pathlib.Path]]] = field(
        default_factory=lambda: {"clusters": {}, "users": {}, "contexts": {}})

    def add(self, path: pathlib.Path, data: dict[str, Any]) -> None:
        if self.current_context is None and data.get("current-context"):
            self.current_context = str(data["current-context"])
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            items = data.get(section) or []
            if not isinstance(items, list):
                raise KubeconfigError(f"kubeconfig {path}: '{section}' is not a list: fix the file, or {FLAGS}")
            for item in items:
                if not isinstance(item, dict) or not item.get("name"):
                    raise KubeconfigError(f"kubeconfig {path}: an entry of '{section}' has no name: fix the file")
                body = item.get(key) or {}
                if not isinstance(body, dict):
                    raise KubeconfigError(f"kubeconfig {path}: {key} {item['name']!r} is not a mapping")
                self.entries[section].setdefault(str(item["name"]), (body, path))

    def where(self) -> str:
        return os.pathsep.join(str(p) for p in self.files)


def _paths(kubeconfig: str | None) -> tuple[list[pathlib.Path], bool]:
    """The kubeconfig files to read, and whether the user named them (--kubeconfig or KUBECONFIG)."""
    given = kubeconfig if kubeconfig is not None else os.environ.get("KUBECONFIG")
    if given:
        return [pathlib.Path(p).expanduser() for p in given.split(os.pathsep) if p], True
    return [DEFAULT_PATH.expanduser()], False


def load_endpoint(kubeconfig: str | None, context: str | None, namespace: str | None) -> Endpoint:
    """The API server of a kubeconfig context (--context, else current-context); without any kubeconfig file,
    the pod's service account; the namespace is `namespace`, else the context's, else `default`."""
    paths, named = _paths(kubeconfig)
    existing = [p for p in paths if p.exists()]
    if not existing:
        if not named and "KUBERNETES_SERVICE_HOST" in os.environ and (SERVICE_ACCOUNT / "token").is_file():
            return _in_cluster(namespace)
        missing = ", ".join(str(p) for p in paths)
        hint = FLAGS if not named else "check --kubeconfig / KUBECONFIG"
        raise KubeconfigError(f"no kubeconfig: {missing} does not exist (and not running in a pod): {hint}")
    merged = _Merged(existing)
    for path in existing:
        merged.add(path, _read_yaml(path))
    return _endpoint(merged, context, namespace)


def _endpoint(merged: _Merged, context: str | None, namespace: str | None) -> Endpoint:
    contexts = merged.entries["contexts"]
    known = ", ".join(sorted(contexts)) or "none"
    name = context or merged.current_context
    if not name:
        raise KubeconfigError(f"kubeconfig {merged.where()} has no current-context: pass --context "
                              f"(contexts: {known})")
    if name not in contexts:
        flag = "--context" if context else "current-context"
        raise KubeconfigError(f"context {name!r} ({flag}) is not in kubeconfig {merged.where()} (contexts: {known})")
    ctx, ctx_file = contexts[name]
    source = f'context "{name}" of {ctx_file}'
    cluster_name = str(ctx.get("cluster") or "")
    if cluster_name not in merged.entries["clusters"]:
        raise KubeconfigError(f"{source} names cluster {cluster_name!r}, which the kubeconfig does not define")
    cluster, cluster_file = merged.entries["clusters"][cluster_name]
    if not cluster.get("server"):
        raise KubeconfigError(f"cluster {cluster_name!r} in {cluster_file} has no server: fix the kubeconfig")
    user_name = str(ctx.get("user") or "")
    user, user_file = merged.entries["users"].get(user_name, ({}, ctx_file))

    def local(value: Any, relative_to: pathlib.Path) -> str | None:
        """A file path of the kubeconfig, relative to the file that names it (as kubectl resolves it)."""
        return str(relative_to.parent / pathlib.Path(str(value)).expanduser()) if value else None

    def data(value: Any, what: str, where: pathlib.Path) -> bytes | None:
        if not value:
            return None
        try:
            return base64.b64decode(str(value), validate=True)
        except ValueError:
            raise KubeconfigError(f"{what} in {where} is not base64: fix the kubeconfig") from None

    return Endpoint(
        server=str(cluster["server"]).rstrip("/"),
        namespace=namespace or str(ctx.get("namespace") or "default"),
        source=source,
        user=user_name or None,
        ca_file=local(cluster.get("certificate-authority"), cluster_file),
        ca_data=data(cluster.get("certificate-authority-data"), "certificate-authority-data", cluster_file),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cert_file=local(user.get("client-certificate"), user_file),
        cert_data=data(user.get("client-certificate-data"), "client-certificate-data", user_file),
        key_file=local(user.get("client-key"), user_file),
        key_data=data(user.get("client-key-data"), "client-key-data", user_file),
        token=user.get("token"),
        token_file=local(user.get("tokenFile"), user_file),
        username=user.get("username"),
        password=user.get("password"),
        exec_plugin=_exec_plugin(user, user_name, user_file),
    )


def _exec_plugin(user: dict[str, Any], name: str, where: pathlib.Path) -> ExecPlugin | None:
    if user.get("auth-provider"):
        provider = (user["auth-provider"] or {}).get("name", "?")
        raise KubeconfigError(f"user {name!r} in {where} uses auth-provider {provider!r}, which opsctl (like "
                              "kubectl 1.26+) does not support: switch the user to its exec credential plugin")
    spec = user.get("exec")
    if not spec:
        return None
    if not isinstance(spec, dict) or not spec.get("command"):
        raise KubeconfigError(f"user {name!r} in {where}: exec has no command: fix the kubeconfig")
    env = tuple((str(e.get("name")), str(e.get("value", ""))) for e in spec.get("env") or [])
    return ExecPlugin(str(spec["command"]), tuple(str(a) for a in spec.get("args") or []), env,
                      str(spec.get("apiVersion") or "client.authentication.k8s.io/v1"))


def _in_cluster(namespace: str | None) -> Endpoint:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    own = SERVICE_ACCOUNT / "namespace"
    return Endpoint(
        server=f"https://{host}:{port}",
        namespace=namespace or (own.read_text().strip() if own.is_file() else "") or "default",
        source="the pod's service account",
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT / "token"),
    )
