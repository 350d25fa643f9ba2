"""Backtest tasks on Dask distributed: an embedded `LocalCluster` of worker processes by default (nothing to
install or start), or the scheduler of a shared cluster (`--scheduler tcp://host:8786`; in Kubernetes the
one a `DaskJob` of the dask-kubernetes operator starts, whose address it sets in `DASK_SCHEDULER_ADDRESS`).

Every task is a pure function of its inputs (the engine's randomness is seeded), results come back in
task order whatever finishes first, so a run gives identical results on any number of workers. Large
inputs (the events) are scattered to the workers once, not shipped with every task."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from distributed import Client, LocalCluster, as_completed
from rich.console import Console
from rich.progress import Progress

T = TypeVar("T")
R = TypeVar("R")
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


@dataclass
class Executor:
    client: Client
    progress: bool
    """Show a progress bar on stderr (only ever when it is a terminal)."""

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def share(self, value: Any) -> Any:
        """`value` placed on every worker once; pass the handle to tasks instead of the value."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(self, fn: Callable[..., R], tasks: Sequence[tuple[Any, ...]], label: str = "tasks") -> list[R]:
        """fn(*task) for every task, on the cluster; results in task order."""
        futures = [self.client.submit(fn, *task, pure=False) for task in tasks]
        if self.progress and futures:
            with Progress(console=Console(stderr=True), transient=True) as bar:  # stdout may carry --json
                track = bar.add_task(label, total=len(futures))
                for _ in as_completed(futures):
                    bar.advance(track)
        results: list[R] = self.client.gather(futures)
        return results


@contextlib.contextmanager
def executor(workers: int = 2, scheduler: str | None = None, progress: bool = False) -> Iterator[Executor]:
    """A client on `scheduler` (else `$DASK_SCHEDULER_ADDRESS`), or on an embedded cluster of `workers`
    single-threaded worker processes that lives as long as the block."""
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    show = progress and sys.stderr.isatty()
    if address:
        with Client(address) as client:
            yield Executor(client, show)
        return
    if workers < 1:
        raise ValueError("an embedded cluster needs at least one worker")
    # On loopback only; the scheduler's HTTP routes on a free port (its default 8787 may be taken by another
    # cluster on the machine, and then distributed warns), no dashboard.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield Executor(client, show)
