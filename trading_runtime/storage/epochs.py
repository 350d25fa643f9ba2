"""Fencing tokens in the database (Kleppmann's): the book of a symbol belongs to the leadership term with the
highest epoch (the Lease's `leaseTransitions`, leadership.py) that has loaded it.

`book_epochs` holds that epoch per symbol. A new leader raises it in the transaction that loads the book, which
takes the row's lock; every flush of a leader's writer reads it `FOR SHARE` first and commits only if it is not
above the writer's own. So a deposed leader's flush either commits before the new leader's load (and is in the
book it loads) or is refused — it never lands under the new leader. A runtime without a Lease has no epoch and
neither raises nor checks it (it is the symbol's only trader)."""

from __future__ import annotations

from dataclasses import dataclass

RAISE = """
    INSERT INTO book_epochs (symbol, epoch) VALUES (%s, %s)
    ON CONFLICT (symbol) DO UPDATE SET epoch = EXCLUDED.epoch WHERE book_epochs.epoch < EXCLUDED.epoch
"""
"""Raise the symbol's epoch to ours; the conflicting row is locked even when it is not updated (it is higher)."""
READ = "SELECT epoch FROM book_epochs WHERE symbol = %s"
READ_SHARED = READ + " FOR SHARE"
"""A flush's check: blocks while a load holds the row, and then reads what that load committed."""


def admits(stored: int | None, epoch: int) -> bool:
    """Whether a term of `epoch` may write the book whose stored epoch is `stored`. None: no leader with an
    epoch has loaded it yet (a leader's order rows come after its own load, which creates the row)."""
    return stored is None or stored <= epoch


@dataclass(frozen=True)
class Deposed:
    """The book was already loaded by a later term: this process is no longer the leader it thinks it is."""

    symbol: str
    epoch: int
    stored: int

    def __str__(self) -> str:
        return (f"the book of {self.symbol} belongs to epoch {self.stored}, above this process's {self.epoch}: "
                "deposed (if the Lease was deleted and recreated, its leaseTransitions restarted: see docs/scaling.md)")
