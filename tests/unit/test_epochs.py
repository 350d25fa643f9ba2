"""Fencing tokens (trading_runtime/storage/epochs.py): the rule a flush applies, and how the writer keeps each
term's rows apart."""

from __future__ import annotations

import pytest

from trading_runtime.storage.epochs import admits
from trading_runtime.storage.writer import TABLES, WriteBehind


@pytest.mark.parametrize(("stored", "epoch", "admitted"), [
    (None, 0, True), (None, 7, True), (3, 3, True), (3, 4, True), (4, 3, False), (1, 0, False),
], ids=["no-row", "no-row-high", "same-term", "later-term", "deposed", "deposed-first"])
def test_a_term_writes_the_book_unless_a_later_term_has_loaded_it(stored, epoch, admitted):
    assert admits(stored, epoch) is admitted


def queued(writer: WriteBehind, epoch: int | None, rows: list[tuple[str, str]]) -> None:
    writer.set_epoch(epoch)
    for table, row_id in rows:
        writer.put(table, (row_id, *[None] * (len(TABLES[table].columns) - 1)))


def batches(writer: WriteBehind) -> list[tuple[int | None, dict[str, list[str]]]]:
    """The batches the flusher would write, in order (without a database)."""
    out = []
    while writer.depth:
        epoch, taken = writer._next_batch()
        out.append((epoch, {name: [row[0] for _, row in items] for name, items in taken.items()}))
    return out


def test_a_batch_holds_rows_of_one_epoch_and_parents_still_go_first(tmp_path):
    writer = WriteBehind("host=127.0.0.1 port=1", tmp_path / "spill.jsonl", batch_size=10)
    queued(writer, None, [("ticks", "t0")])  # a runtime before any Lease term: no epoch, no check
    queued(writer, 1, [("orders", "o1"), ("fills", "f1")])
    queued(writer, 2, [("fills", "f1-again"), ("orders", "o2"), ("fills", "f2")])
    queued(writer, 2, [("positions", "p2")])  # the same term again: no new batch boundary
    assert batches(writer) == [
        (None, {"ticks": ["t0"]}),
        # f1-again is epoch 2's though the parent row waiting in `orders` (o2) is later still
        (1, {"orders": ["o1"], "fills": ["f1"]}),
        (2, {"orders": ["o2"], "fills": ["f1-again", "f2"], "positions": ["p2"]}),
    ]
