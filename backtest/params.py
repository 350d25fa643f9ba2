"""Parameter grids over the strategy and risk settings: dotted camelCase paths into the runtime's config
model (`strategy.entryScore`, `risk.targetVolatility`), each with its values; every combination is a
candidate, validated by the config model itself (an exit score above the entry score is refused there)."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import ValidationError

from trading_runtime.config import RuntimeConfig

Params = dict[str, float]
Grid = dict[str, list[float]]


def parse_grid(items: list[str]) -> Grid:
    """`["strategy.entryScore=0.4,0.5", "risk.targetVolatility=0.1"]` → a grid."""
    grid: Grid = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path or not values:
            raise ValueError(f"grid item {item!r}: expected PATH=V1,V2,... (e.g. strategy.entryScore=0.4,0.5)")
        try:
            grid[path.strip()] = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"grid item {item!r}: values must be numbers") from None
    return grid


def candidates(grid: Grid) -> list[Params]:
    """Every combination, in a fixed order (paths as given, values as given)."""
    paths = list(grid)
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*(grid[p] for p in paths))]


def apply(config: RuntimeConfig, params: Params) -> RuntimeConfig:
    """`config` with `params` set; ValueError naming the path when a path is unknown or the result invalid."""
    data: dict[str, Any] = config.model_dump(by_alias=True)
    for path, value in params.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"unknown parameter {path!r}")
            node = node[part]
        if leaf not in node:
            raise ValueError(f"unknown parameter {path!r}")
        node[leaf] = int(value) if isinstance(node[leaf], int) and value == int(value) else value
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{params}: {'.'.join(str(p) for p in first['loc'])} {first['msg']}".replace(" : ", ": ")) \
            from None
