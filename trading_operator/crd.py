"""Generate the TradingSymbol CustomResourceDefinition from the pydantic models.

Pydantic's JSON Schema is turned into a Kubernetes structural schema: references inlined, titles
dropped, `anyOf [X, null]` turned into `nullable`, object defaults collapsed to `{}` so the API server
applies the nested defaults itself."""

from __future__ import annotations

import json
from typing import Any

import yaml

from trading_operator import api, fleet_api
from trading_runtime.config import CamelModel

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Symbol", "type": "string", "jsonPath": ".spec.symbol", "description": "Underlying symbol"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Summary phase"},
    {
        "name": "Revision",
        "type": "integer",
        "jsonPath": ".status.currentRevision",
        "description": "Revision running now",
    },
    {
        "name": "Stable",
        "type": "integer",
        "jsonPath": ".status.stableRevision",
        "description": "Last stable revision",
    },
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas", "description": "Ready pods"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

FLEET_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Summary phase"},
    {"name": "Wave", "type": "integer", "jsonPath": ".status.currentWave", "description": "Wave rolling out"},
    {"name": "Waves", "type": "integer", "jsonPath": ".status.waves", "description": "Waves in the plan"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

_DROP_KEYS = {"title", "additionalProperties"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and rewrite one JSON Schema node into the structural subset Kubernetes accepts."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    any_of = node.get("anyOf")
    if any_of is not None:
        non_null = [option for option in any_of if option.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            merged = {**_structural(non_null[0], defs), **_structural(rest, defs), "nullable": True}
            if merged.get("default", 0) is None:
                del merged["default"]
            return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key == "$defs":
            continue
        out[key] = (
            _structural(value, defs) if key in {"properties", "items"} or isinstance(value, dict) else value
        )
    if "properties" in node:
        out["properties"] = {name: _structural(prop, defs) for name, prop in node["properties"].items()}
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if isinstance(out.get("default"), dict) and not out.get("required"):
        out["default"] = {}
    return out


def openapi_schema(model: type[CamelModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model (by alias, with descriptions)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


def build_crd() -> dict[str, Any]:
    """The TradingSymbol CRD manifest."""
    return _crd(api.KIND, api.PLURAL, api.SINGULAR, api.SHORT_NAMES, api.TradingSymbolSpec, api.TradingSymbolStatus,
                PRINTER_COLUMNS, "TradingSymbol runs the trading runtime for one underlying symbol: pods, config, "
                "revisions, rollback and drain on deletion.")


def build_fleet_crd() -> dict[str, Any]:
    """The FleetRollout CRD manifest."""
    return _crd(fleet_api.FLEET_KIND, fleet_api.FLEET_PLURAL, fleet_api.FLEET_SINGULAR, fleet_api.FLEET_SHORT_NAMES,
                fleet_api.FleetRolloutSpec, fleet_api.FleetRolloutStatus, FLEET_PRINTER_COLUMNS,
                "FleetRollout rolls one change (a runtime image, a runtime-config patch) out over the "
                "TradingSymbols it selects, in waves gated by each symbol's analysis; a failed wave stops it "
                "and takes the change back from every symbol it reached.")


def _crd(kind: str, plural: str, singular: str, short_names: tuple[str, ...], spec_model: type[CamelModel],
         status_model: type[CamelModel], columns: list[dict[str, Any]], description: str) -> dict[str, Any]:
    spec_schema = openapi_schema(spec_model)
    status_schema = openapi_schema(status_model)
    status_schema["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status_schema["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{api.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "tradeops"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": ["tradeops", "all"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd_yaml() -> str:
    """The CRD as the YAML document checked in under deploy/crds/."""
    header = "# Generated by `python -m trading_operator.crd` from trading_operator/api.py. Do not edit.\n"
    return header + yaml.dump(build_crd(), Dumper=_NoAliasDumper, sort_keys=False, width=110)


def render_fleet_crd_yaml() -> str:
    """The FleetRollout CRD as checked in under deploy/crds/."""
    header = ("# Generated by `python -m trading_operator.crd --fleet` from trading_operator/fleet_api.py. "
              "Do not edit.\n")
    return header + yaml.dump(build_fleet_crd(), Dumper=_NoAliasDumper, sort_keys=False, width=110)


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "max length ")):
        if key in node:
            parts.append(f"{label}{node[key]}")
    if "pattern" in node:
        parts.append("`" + str(node["pattern"]).replace("|", "\\|") + "`")
    if "enum" in node:
        parts.append(" \\| ".join(f"`{v}`" for v in node["enum"]))
    if any(rule.get("rule") == "self == oldSelf" for rule in node.get("x-kubernetes-validations", [])):
        parts.append("immutable")
    return ", ".join(parts)


def _field_rows(node: dict[str, Any], path: str, required: set[str]) -> list[str]:
    rows = []
    for name, prop in node.get("properties", {}).items():
        field = f"{path}.{name}"
        default = prop.get("default")
        shown = "" if default is None or default == {} else f"`{json.dumps(default)}`"
        if name in required:
            shown = "**required**"
        description = str(prop.get("description", "")).replace("\n", " ").replace("|", "\\|")
        rows.append(f"| `{field}` | {prop.get('type', '')} | {shown} | {_constraints(prop)} | {description} |")
        rows.extend(_field_rows(prop, field, set(prop.get("required", []))))
    return rows


def render_field_reference() -> str:
    """Markdown reference of every spec field (docs/tradingsymbol-fields.md)."""
    spec = openapi_schema(api.TradingSymbolSpec)
    lines = [
        "# TradingSymbol spec fields",
        "",
        "Generated by `python -m trading_operator.crd --docs` from trading_operator/api.py. Do not edit.",
        "",
        "| field | type | default | constraints | description |",
        "|---|---|---|---|---|",
        *_field_rows(spec, "spec", set(spec.get("required", []))),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if "--docs" in sys.argv:
        print(render_field_reference(), end="")
    else:
        print(render_fleet_crd_yaml() if "--fleet" in sys.argv else render_crd_yaml(), end="")
