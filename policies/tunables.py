"""Which runtime-config fields the tuner may move: numeric fields of `RuntimeConfig`, by camelCase path."""

from __future__ import annotations

from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

from policies.models import TunableParameter
from trading_runtime.config import RuntimeConfig

NOT_TUNABLE = ("risk.",)
"""Risk limits are set by people (and bounded by RiskPolicy), never by the tuner."""


def _field(path: str) -> tuple[Any, type[BaseModel]] | None:
    model: type[BaseModel] = RuntimeConfig
    parts = path.split(".")
    for i, part in enumerate(parts):
        found = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if found is None:
            return None
        if i == len(parts) - 1:
            return found, model
        annotation = found.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


def bounds_of(path: str) -> tuple[float | None, float | None]:
    """The runtime config's own bounds of a field (None where unbounded)."""
    found = _field(path)
    if found is None:
        return None, None
    low = high = None
    for meta in found[0].metadata:
        if isinstance(meta, Ge | Gt):
            low = float(meta.ge if isinstance(meta, Ge) else meta.gt)  # type: ignore[arg-type]
        if isinstance(meta, Le | Lt):
            high = float(meta.le if isinstance(meta, Le) else meta.lt)  # type: ignore[arg-type]
    return low, high


def parameter_errors(parameter: TunableParameter) -> list[str]:
    """`field: problem` for a parameter the runtime does not have or whose bounds exceed the runtime's."""
    if parameter.path.startswith(NOT_TUNABLE):
        return [f"path: {parameter.path} is a risk limit; risk limits are not tunable"]
    found = _field(parameter.path)
    if found is None:
        return [f"path: the runtime config has no field {parameter.path}"]
    if found[0].annotation not in (int, float):
        return [f"path: {parameter.path} is not numeric"]
    problems = []
    if found[0].annotation is int and not parameter.integer:
        problems.append(f"integer: {parameter.path} is an integer field; set integer: true")
    low, high = bounds_of(parameter.path)
    if low is not None and parameter.min < low:
        problems.append(f"min: {parameter.min} is below the runtime's lower bound {low} for {parameter.path}")
    if high is not None and parameter.max > high:
        problems.append(f"max: {parameter.max} is above the runtime's upper bound {high} for {parameter.path}")
    return problems
