"""Walk-forward folds over sessions, with purging and an embargo (pure; no data is touched here).

Fold k trains on `train` sessions and is tested on the `test` sessions that follow, after `embargo`
sessions left out; folds move forward by `step` sessions (default: `test`, so test folds tile the data
without overlap). Rolling windows keep `train` sessions; anchored ones grow from the first session.
Purging: the train window ends at least `purge_s` before the test window starts, so that no train
label (a horizon-ahead move) is measured with prices from the test window. Each fold's runs are separate
engine runs on their own windows: nothing learnt on a test window reaches a later train window except
through the parameters chosen on train data."""

from __future__ import annotations

from dataclasses import dataclass

from backtest.data import SessionWindow


@dataclass(frozen=True)
class Fold:
    index: int
    train_start: float
    train_end: float
    test_start: float
    test_end: float
    train_sessions: tuple[str, ...]
    test_sessions: tuple[str, ...]


def walk_forward(windows: list[SessionWindow], train: int, test: int, step: int | None = None, embargo: int = 0,
                 purge_s: float = 0.0, anchored: bool = False) -> list[Fold]:
    """The folds (module doc); ValueError when the data holds none."""
    if train < 1 or test < 1 or embargo < 0 or purge_s < 0:
        raise ValueError("train and test need at least one session; embargo and purge cannot be negative")
    step = step or test
    if step < 1:
        raise ValueError("step must be at least one session")
    folds: list[Fold] = []
    first_test = train + embargo
    while first_test + test <= len(windows):
        train_first = 0 if anchored else first_test - embargo - train
        trained = windows[train_first:first_test - embargo]
        tested = windows[first_test:first_test + test]
        train_end = min(trained[-1].end, tested[0].start - purge_s)
        if train_end > trained[0].start:
            folds.append(Fold(len(folds), trained[0].start, train_end, tested[0].start, tested[-1].end,
                              tuple(w.key for w in trained), tuple(w.key for w in tested)))
        first_test += step
    if not folds:
        raise ValueError(f"{len(windows)} sessions hold no fold of {train} train + {embargo} embargo + {test} test "
                         "sessions")
    return folds
