"""What the API server does with a CRD's structural schema on every write: default, prune, validate, and
the one CEL validation rule the emulator evaluates (the transition rule `self == oldSelf`, immutability)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema

PRESERVE = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"
IMMUTABLE_RULE = "self == oldSelf"
"""The only CEL rule evaluated here; a CRD with any other is refused at registration (not silently ignored)."""


def apply_defaults(obj: Any, schema: dict[str, Any]) -> Any:
    """Fill missing properties that have a `default`, recursively (defaults are defaulted too)."""
    if isinstance(obj, dict) and "properties" in schema:
        for name, prop in schema["properties"].items():
            if name not in obj and "default" in prop:
                obj[name] = copy.deepcopy(prop["default"])
            if name in obj:
                obj[name] = apply_defaults(obj[name], prop)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in obj]
    return obj


def prune(obj: Any, schema: dict[str, Any], root: bool = False) -> Any:
    """Drop fields the schema does not know (unless it preserves unknown fields there)."""
    if isinstance(obj, dict) and schema.get("type") == "object" and not schema.get(PRESERVE):
        known = schema.get("properties", {})
        if root:
            known = {**known, "apiVersion": {}, "kind": {}, "metadata": {"type": "object", PRESERVE: True}}
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            return {k: prune(v, additional) for k, v in obj.items()}
        return {k: prune(v, known[k]) for k, v in obj.items() if k in known}
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"]) for item in obj]
    return obj


def to_json_schema(node: Any) -> Any:
    """Translate the Kubernetes extensions (nullable, int-or-string) into plain JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _detail(validator: str, expected: Any, fallback: str) -> str:
    if validator == "minimum":
        return f"should be greater than or equal to {expected}"
    if validator == "maximum":
        return f"should be less than or equal to {expected}"
    if validator == "enum":
        return "supported values: " + ", ".join(f'"{v}"' for v in expected)
    if validator == "pattern":
        return f"should match '{expected}'"
    if validator == "type":
        return f"must be of type {expected}"
    return fallback


def validation_causes(obj: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, str]]:
    """Every violation as an API-server cause: {reason, field, message}."""
    return _causes(obj, jsonschema.Draft7Validator(to_json_schema(schema)))


_VALIDATORS: dict[int, tuple[dict[str, Any], jsonschema.Draft7Validator]] = {}
"""A validator per CRD schema object (translating the schema for every write was a fifth of the emulator's CPU
in a 500-symbol converge); a CRD update stores a new schema object, which gets a validator of its own."""


def _validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        top = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                        if k not in ("apiVersion", "kind", "metadata")}}
        cached = _VALIDATORS[id(schema)] = (schema, jsonschema.Draft7Validator(to_json_schema(top)))
    return cached[1]


def _causes(obj: dict[str, Any], validator: jsonschema.Draft7Validator) -> list[dict[str, str]]:
    causes = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
        field = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else ""
            field = f"{field}.{missing}" if field else missing
            causes.append({"reason": "FieldValueRequired", "field": field, "message": "Required value"})
            continue
        detail = _detail(str(error.validator), error.validator_value, str(error.message))
        value = json.dumps(error.instance) if isinstance(error.instance, str | int | float | bool) else "..."
        if error.validator == "enum":
            causes.append({"reason": "FieldValueNotSupported", "field": field,
                           "message": f"Unsupported value: {value}: {detail}"})
        else:
            causes.append({"reason": "FieldValueInvalid", "field": field,
                           "message": f"Invalid value: {value}: {field} in body {detail}"})
    return causes


def unsupported_rules(node: Any, path: str = "") -> list[str]:
    """The CEL rules of a schema the emulator cannot evaluate (`path: rule`), so registration can refuse them."""
    if isinstance(node, list):
        return [found for item in node for found in unsupported_rules(item, path)]
    if not isinstance(node, dict):
        return []
    # Under a list or a map, a transition rule needs the items correlated (listType map): not done here.
    found = [f"{path or '<root>'}: {rule.get('rule')}" for rule in node.get(VALIDATIONS, [])
             if " ".join(str(rule.get("rule", "")).split()) != IMMUTABLE_RULE or "[*]" in path]
    for name, prop in (node.get("properties") or {}).items():
        found += unsupported_rules(prop, f"{path}.{name}" if path else name)
    for key in ("items", "additionalProperties"):
        found += unsupported_rules(node.get(key), f"{path}[*]")
    return found


def transition_causes(new: Any, old: Any, schema: dict[str, Any], path: str = "") -> list[dict[str, str]]:
    """Every `self == oldSelf` rule an update breaks, as the API server reports a failed CEL rule: the field,
    and `Invalid value: "<schema type>": <message>` (the value shown is the type, not the value). A transition
    rule applies only where the old and the new object both have the field."""
    causes = []
    for rule in schema.get(VALIDATIONS, []):
        if new != old:
            message = rule.get("message") or f"failed rule: {rule.get('rule')}"
            causes.append({"reason": "FieldValueInvalid", "field": path or "<nil>",
                           "message": f'Invalid value: "{schema.get("type", "object")}": {message}'})
    if isinstance(new, dict) and isinstance(old, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name in new and name in old:
                causes += transition_causes(new[name], old[name], prop, f"{path}.{name}" if path else name)
    return causes


def admit(obj: dict[str, Any], schema: dict[str, Any] | None, old: dict[str, Any] | None = None) \
        -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Default, prune and validate a custom object (an update also against the `old` one's transition rules).
    Returns (stored object, causes)."""
    if not schema:
        return obj, []
    admitted = prune(apply_defaults(copy.deepcopy(obj), schema), schema, root=True)
    body = {k: v for k, v in admitted.items() if k not in ("apiVersion", "kind", "metadata")}
    causes = _causes(body, _validator(schema))
    if old is not None and not causes:
        top = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                        if k not in ("apiVersion", "kind", "metadata")}}
        before = {k: v for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")}
        causes = transition_causes(body, before, top)
    return admitted, causes
