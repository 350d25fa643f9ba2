"""A pod's volumes on the host, as the kubelet's volume plugins lay them out: configMap, secret and
projected (configMap/secret sources) volumes written with the AtomicWriter's layout (a timestamped
directory, a `..data` symlink to it and a symlink per file through `..data`, so an update is one rename
that readers never see half done), emptyDir as a directory. A non-optional ConfigMap or Secret that does
not exist fails the mount (`MountVolume.SetUp failed for volume "config" : configmap "x" not found`)."""

from __future__ import annotations

import base64
import datetime
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]
"""(kind "configmaps" | "secrets", name) → the object in the pod's namespace, or None."""

DATA_LINK = "..data"


class MountError(Exception):
    """A volume that cannot be set up (yet): the kubelet retries."""


def _source_files(kind: str, source: Obj, lookup: Lookup) -> dict[str, bytes] | None:
    """The files of one configMap/secret source; None when it is optional and missing."""
    name = source.get("name", "")
    obj = lookup(kind, name)
    if obj is None:
        if source.get("optional"):
            return None
        raise MountError(f'{"configmap" if kind == "configmaps" else "secret"} "{name}" not found')
    if kind == "configmaps":
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    else:
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data |= {k: v.encode() for k, v in (obj.get("stringData") or {}).items()}
    items = source.get("items")
    if not items:
        return data
    out = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise MountError(f'configmap references non-existent config key: {item["key"]}' if kind == "configmaps"
                             else f'secret references non-existent secret key: {item["key"]}')
        out[item.get("path", item["key"])] = data[item["key"]]
    return out


def volume_files(volume: Obj, lookup: Lookup) -> dict[str, bytes] | None:
    """The files a configMap, secret or projected volume holds; None for a directory volume (emptyDir)."""
    if "configMap" in volume:
        return _source_files("configmaps", volume["configMap"], lookup) or {}
    if "secret" in volume:
        secret = volume["secret"]
        return _source_files("secrets", {**secret, "name": secret.get("secretName", "")}, lookup) or {}
    if "projected" in volume:
        files: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or []:
            for key, kind in (("configMap", "configmaps"), ("secret", "secrets")):
                if key in source:
                    files |= _source_files(kind, source[key], lookup) or {}
        return files
    return None


def write_atomically(target: pathlib.Path, files: dict[str, bytes]) -> bool:
    """AtomicWriter.Write: publish `files` under `target`; True when anything changed."""
    target.mkdir(parents=True, exist_ok=True)
    data = target / DATA_LINK
    current = _read_current(target)
    if current == files:
        return False
    stamp = target / datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    stamp.mkdir()
    for relative, content in files.items():
        path = stamp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)
    temporary = target / "..data_tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(stamp.name)
    old = data.resolve() if data.is_symlink() else None
    os.replace(temporary, data)  # the one atomic step readers can see
    tops = {relative.split("/", 1)[0] for relative in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_LINK}/{top}")
    for entry in target.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old is not None and old != stamp.resolve() and old.exists():
        shutil.rmtree(old)
    return True


def _read_current(target: pathlib.Path) -> dict[str, bytes] | None:
    data = target / DATA_LINK
    if not data.is_symlink():
        return None
    root = data.resolve()
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}
