"""Patch algorithms: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and a strategic merge patch
close enough for the list fields the operator and kubectl touch (items merged by their `name`)."""

from __future__ import annotations

import copy
from typing import Any


class PatchTestError(Exception):
    """A JSON-patch `test` operation did not hold."""


class PatchInvalidError(Exception):
    """A patch that cannot be applied (bad path, bad operation)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
               "volumeMounts": "mountPath", "ports": "containerPort", "conditions": "type"}


def strategic_merge_patch(target: Any, patch: Any, key: str = "") -> Any:
    """Like a merge patch, but lists of named items (containers, env, volumes, ...) merge by name."""
    if isinstance(patch, list) and isinstance(target, list) and key in _MERGE_KEYS:
        merge_key = _MERGE_KEYS[key]
        if all(isinstance(i, dict) and merge_key in i for i in patch + target):
            result = [copy.deepcopy(i) for i in target]
            for item in patch:
                index = next((n for n, t in enumerate(result) if t[merge_key] == item[merge_key]), None)
                if index is None:
                    result.append(copy.deepcopy(item))
                else:
                    result[index] = strategic_merge_patch(result[index], item)
            return result
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, value in patch.items():
        if k.startswith("$"):
            continue  # directives ($patch, $retainKeys, ...) are not emulated
        if value is None:
            merged.pop(k, None)
        else:
            merged[k] = strategic_merge_patch(merged.get(k), value, k)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchInvalidError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def _add(doc: Any, parts: list[str], value: Any, replace: bool) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if replace:
            parent[index] = copy.deepcopy(value)
        else:
            parent.insert(index, copy.deepcopy(value))
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise KeyError(last)
        parent[last] = copy.deepcopy(value)
    else:
        raise KeyError(last)
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _resolve(doc, parts[:-1])
    if isinstance(parent, list):
        return parent.pop(int(parts[-1]))
    return parent.pop(parts[-1])


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test."""
    if not isinstance(operations, list):
        raise PatchInvalidError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise PatchTestError(f"the value at {op['path']} does not match {op.get('value')!r}")
            elif kind == "add":
                doc = _add(doc, parts, op["value"], replace=False)
            elif kind == "replace":
                doc = _add(doc, parts, op["value"], replace=True)
            elif kind == "remove":
                _remove(doc, parts)
            elif kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = _remove(doc, source) if kind == "move" else copy.deepcopy(_resolve(doc, source))
                doc = _add(doc, parts, value, replace=False)
            else:
                raise PatchInvalidError(f"unknown JSON patch operation {kind!r}")
        except PatchTestError:
            raise
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            if op.get("op") == "test":
                raise PatchTestError(f"the path {op.get('path')} does not exist") from exc
            raise PatchInvalidError(f"cannot apply {op!r}: {exc}") from exc
    return doc
