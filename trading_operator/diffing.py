"""Comparing manifests: does the observed object carry everything the operator wants, and what changed.

The API server adds defaults (probe thresholds, strategy fields, ...) and canonicalises quantities
(`1000m` → `1`), so "in sync" means: every field the operator sets is present with an equal value."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}


def quantity_value(text: str) -> Decimal | None:
    """The numeric value of a Kubernetes quantity string, or None if it is not one."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _FACTORS[match.group(2)]
    except InvalidOperation:
        return None


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str) and isinstance(have, str):
        a, b = quantity_value(want), quantity_value(have)
        return a is not None and a == b
    return False


def is_subset(want: Any, have: Any) -> bool:
    """True when every field of `want` is in `have` with an equal value (lists element by element)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(w, h) for w, h in zip(want, have, strict=True))
        )
    return _scalar_equal(want, have)


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Dotted paths where `have` does not carry `want` (for Event messages)."""
    if isinstance(want, dict) and isinstance(have, dict):
        out: list[str] = []
        for key, value in want.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in have:
                out.append(f"{sub} missing")
            else:
                out.extend(differences(value, have[key], sub))
        return out
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        return [
            d
            for i, (w, h) in enumerate(zip(want, have, strict=True))
            for d in differences(w, h, f"{path}[{i}]")
        ]
    if is_subset(want, have):
        return []
    return [f"{path}: {_short(have)} (want {_short(want)})"]


def changed_fields(old: Any, new: Any, path: str = "") -> list[str]:
    """`path old→new` for every leaf that differs between two JSON documents."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            out.extend(changed_fields(old.get(key), new.get(key), sub))
        return out
    if old == new:
        return []
    return [f"{path} {_short(old)}→{_short(new)}"]


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
