"""The book as PostgreSQL holds it: what a new leader takes over before it trades (it never starts flat)."""

from __future__ import annotations

from dataclasses import dataclass

from trading_runtime.execution.paper import Position
from trading_runtime.storage import epochs

LATEST_POSITIONS = """
    SELECT DISTINCT ON (instrument) instrument, quantity, average_price, realized_pnl
    FROM positions WHERE symbol = %s ORDER BY instrument, ts DESC, seq DESC
"""
FILLED_ORDERS = "SELECT f.order_id::text FROM fills f WHERE f.order_id = ANY(%s::uuid[])"
FEES = "SELECT coalesce(sum(f.fee), 0) FROM fills f JOIN orders o ON o.id = f.order_id WHERE o.symbol = %s"


@dataclass(frozen=True)
class Book:
    positions: dict[str, Position]
    """The latest snapshot of every instrument the symbol ever held (flat ones too: their realised P&L)."""
    fees: float
    epoch: int | None = None
    """The term's fencing token when the load took one (storage/epochs.py)."""

    @property
    def held(self) -> dict[str, float]:
        return {i: p.quantity for i, p in self.positions.items() if p.quantity}


async def load_book(conninfo: str, symbol: str, fenced: bool = False) -> Book:
    """The symbol's positions and fees paid, as written by every leader before. `fenced` (a leader elected on a
    Lease): in one transaction that first takes the next epoch (storage/epochs.py), so no flush of an earlier
    term commits after the read; the book carries it."""
    import psycopg  # loaded on first use: a runtime without a database never pays its ~9 MB

    async with await psycopg.AsyncConnection.connect(conninfo, connect_timeout=3) as conn, conn.transaction():
        epoch = None
        if fenced:
            allocated = await (await conn.execute(epochs.ALLOCATE, (symbol,))).fetchone()
            assert allocated is not None
            epoch = int(allocated[0])
        rows = await (await conn.execute(LATEST_POSITIONS, (symbol,))).fetchall()
        fees_row = await (await conn.execute(FEES, (symbol,))).fetchone()
    positions = {str(instrument): Position(float(quantity), float(average), float(realized))
                 for instrument, quantity, average, realized in rows}
    return Book(positions, float(fees_row[0]) if fees_row else 0.0, epoch)


async def booked_orders(conninfo: str, order_ids: list[str]) -> set[str]:
    """Which of `order_ids` (the broker's client order ids) have their fill in the book."""
    import psycopg

    if not order_ids:
        return set()
    async with await psycopg.AsyncConnection.connect(conninfo, connect_timeout=3) as conn:
        rows = await (await conn.execute(FILLED_ORDERS, (order_ids,))).fetchall()
    return {str(order_id) for (order_id,) in rows}
