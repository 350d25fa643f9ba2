"""Label and field selectors, as the API server parses them from `?labelSelector=` / `?fieldSelector=`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_SET_EXPR = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    """An unparseable selector (the API server answers 400)."""


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _label_requirement(expr: str) -> Callable[[dict[str, str]], bool]:
    match = _SET_EXPR.match(expr)
    if match:
        key, op, values_text = match.groups()
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in expr:
            key, value = (s.strip() for s in expr.split(op, 1))
            if not key:
                raise SelectorError(f"invalid label selector {expr!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if expr.startswith("!"):
        key = expr[1:].strip()
        return lambda labels: key not in labels
    if re.fullmatch(r"[A-Za-z0-9_./-]+", expr):
        return lambda labels: expr in labels
    raise SelectorError(f"invalid label selector {expr!r}")


def label_matcher(selector: str | None) -> Matcher:
    """Matches objects by metadata.labels."""
    if not selector:
        return lambda obj: True
    requirements = [_label_requirement(expr) for expr in _split(selector)]
    return lambda obj: all(req(obj.get("metadata", {}).get("labels") or {}) for req in requirements)


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None) -> Matcher:
    """Matches objects by dotted fields (`metadata.name`, `metadata.namespace`, `involvedObject.name`...)."""
    if not selector:
        return lambda obj: True
    checks: list[tuple[str, bool, str]] = []
    for expr in _split(selector):
        for op in ("!=", "==", "="):
            if op in expr:
                path, value = (s.strip() for s in expr.split(op, 1))
                checks.append((path, op != "!=", value))
                break
        else:
            raise SelectorError(f"invalid field selector {expr!r}")
    return lambda obj: all((_field(obj, path) == value) is equal for path, equal, value in checks)


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (`matchLabels` and `matchExpressions`: In, NotIn, Exists, DoesNotExist) against labels.
    An empty selector matches everything (the API refuses empty selectors where that would be wrong)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key", ""), expression.get("operator", ""), \
            set(expression.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selector_string(selector: dict[str, Any]) -> str:
    """A LabelSelector as the `?labelSelector=` string (what kubectl shows as SELECTOR)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                      "DoesNotExist": f"!{key}"}.get(operator, key))
    return ",".join(parts)
