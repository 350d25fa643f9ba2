"""IntOrString values (`maxSurge: 1`, `maxUnavailable: "25%"`) and their scaling, as apimachinery's
`util/intstr` does it."""

from __future__ import annotations

import math

IntOrString = int | str


def parse_int_or_percent(value: IntOrString) -> tuple[int, bool]:
    """(number, is_percent). A string must be a percentage (`"25%"`); anything else is an error."""
    if isinstance(value, bool):
        raise ValueError("must be an integer or percentage (e.g '5%')")
    if isinstance(value, int):
        return value, False
    if isinstance(value, str) and value.endswith("%") and value[:-1].lstrip("-").isdigit():
        return int(value[:-1]), True
    raise ValueError("a valid percent string must be a numeric string followed by an ending '%' "
                     "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")


def scaled_value(value: IntOrString | None, total: int, round_up: bool) -> int:
    """GetScaledValueFromIntOrPercent: an int as is; a percentage of `total`, rounded up or down."""
    if value is None:
        return 0
    number, percent = parse_int_or_percent(value)
    if not percent:
        return number
    scaled = number * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
