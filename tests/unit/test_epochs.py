"""Fencing tokens (trading_runtime/storage/epochs.py): the rule a flush and a load apply, and the epoch each
leadership term gets from the Lease (leadership.py)."""

from __future__ import annotations

import datetime

import pytest

from trading_runtime.leadership import Create, Elector, LeaseSpec, LeaseTimings, ObservedLease, Update
from trading_runtime.storage.epochs import Deposed, admits
from trading_runtime.storage.writer import TABLES, WriteBehind

T = LeaseTimings(lease_duration=4, renew_deadline=3.0, retry_period=0.5)
WALL = datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("stored", "epoch", "admitted"), [
    (None, 0, True), (None, 7, True), (3, 3, True), (3, 4, True), (4, 3, False), (1, 0, False),
], ids=["no-row", "no-row-high", "same-term", "later-term", "deposed", "deposed-first"])
def test_a_term_writes_the_book_unless_a_later_term_has_loaded_it(stored, epoch, admitted):
    assert admits(stored, epoch) is admitted


def test_deposed_says_which_epochs_and_what_to_check():
    text = str(Deposed("SPY", 2, 5))
    assert "the book of SPY belongs to epoch 5, above this process's 2" in text
    assert "leaseTransitions" in text


def write(elector: Elector, observed: ObservedLease, now: float) -> ObservedLease:
    """One round whose write the API server accepts (a new resourceVersion)."""
    step = elector.plan(observed, now, WALL)
    assert isinstance(step, Create | Update)
    elector.succeeded(step.spec, now)
    return ObservedLease(step.spec, str(int(observed.resource_version or "0") + 1))


def test_the_epoch_is_the_lease_transitions_a_takeover_raises_and_a_renewal_keeps():
    a, b = Elector("pod-a", T), Elector("pod-b", T)
    assert a.epoch is None  # never held: no epoch
    lease = write(a, ObservedLease(None), 0.0)
    assert a.epoch == 0  # created
    lease = write(a, lease, 1.0)
    lease = write(a, lease, 2.0)
    assert a.epoch == 0  # renewals keep it
    b.plan(lease, 2.5, WALL)  # b sees a's last renewal, which then stops
    lease = write(b, lease, 6.5)  # unchanged for the lease's duration: taken over
    assert b.epoch == 1
    assert a.epoch == 0  # the deposed leader's rows keep their older term
    release = b.release(lease, WALL)
    assert release is not None
    released = ObservedLease(release.spec, "99")
    write(a, released, 7.0)  # a released Lease is taken at once, and it is a new term too
    assert a.epoch == 2


def test_a_lease_another_pod_holds_gives_no_epoch():
    elector = Elector("pod-b", T)
    elector.plan(ObservedLease(LeaseSpec(holder_identity="pod-a", lease_duration_seconds=4, lease_transitions=5),
                               "3"), 0.0, WALL)
    assert elector.epoch is None


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
