"""Fencing tokens in the database (Kleppmann's): the book of a symbol belongs to the leadership term that loaded
it last.

`book_epochs` holds a counter per symbol. A new leader takes the next value in the transaction that loads the
book (`ALLOCATE`, which holds the row's lock until the load commits), and every flush of its writer reads the
counter `FOR SHARE` first and commits only if it is not above the writer's own epoch. So a deposed leader's flush
either commits before the new leader's load (and is in the book it loads) or is refused: it never lands under
the new leader. The database hands out the epochs, so they only grow whatever happens to the Lease (deleted and
recreated with the TradingSymbol, a restored database in another cluster). A runtime without a Lease has no
epoch and neither takes nor checks one (it is the symbol's only trader)."""

from __future__ import annotations

ALLOCATE = """
    INSERT INTO book_epochs (symbol, epoch) VALUES (%s, 1)
    ON CONFLICT (symbol) DO UPDATE SET epoch = book_epochs.epoch + 1
    RETURNING epoch
"""
"""This term's epoch: one above every earlier load's; the row stays locked until the loading transaction ends."""
READ_SHARED = "SELECT epoch FROM book_epochs WHERE symbol = %s FOR SHARE"
"""A flush's check: blocks while a load holds the row, and then reads what that load committed."""


def admits(stored: int | None, epoch: int) -> bool:
    """Whether a term of `epoch` may write the book whose stored epoch is `stored`. None: no leader has loaded it
    yet (a leader's order rows come after its own load, which creates the row)."""
    return stored is None or stored <= epoch
