"""Deterministic ids for decisions, orders and fills: the same decision on the same market message gets the
same id in every replica and on every retry, so a replayed decision cannot place or record an order twice
(the broker sees the same client order id; PostgreSQL keeps the first row, `ON CONFLICT DO NOTHING`)."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1d9a52-3c1e-5b0e-9a7d-7472616465af")
"""Fixed: changing it would give every decision a new id."""


def signal_id(symbol: str, ts: float, seq: int, direction: int) -> str:
    """A signal: the symbol, the market message it was decided on (exchange time and feed sequence number; both
    the same in every replica reading the feed) and the direction it moved to."""
    return str(uuid.uuid5(NAMESPACE, f"signal/{symbol}/{ts!r}/{seq}/{direction}"))


def action_id(symbol: str, reason: str, ts: float) -> str:
    """A risk action that is not a signal (kill switch, halt): its reason and when it happened."""
    return str(uuid.uuid5(NAMESPACE, f"action/{symbol}/{reason}/{ts!r}"))


def order_id(decision: str, instrument: str, target: float) -> str:
    """The order a decision sends to bring one instrument to `target` (a decision sends at most one per
    instrument). The target is part of it: a new leader whose book already holds the old leader's fill for the
    decision, or that sizes differently, sends a different order — only the very same order keeps its id."""
    return str(uuid.uuid5(NAMESPACE, f"order/{decision}/{instrument}/{target:g}"))


def fill_id(order: str) -> str:
    """A paper order fills once, whole."""
    return str(uuid.uuid5(NAMESPACE, f"fill/{order}"))
