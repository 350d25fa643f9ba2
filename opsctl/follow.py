"""Following change as it happens, kubectl's way: `get -w` prints a row whenever what a row shows changed;
`describe -w` and `analysis -w` redraw the whole view when the object or its Events changed (in place on a
terminal, the Argo Rollouts plugin's `get rollout --watch`; one view after another on a pipe); `--wait`
prints a line on stderr whenever the progress line changes (like `kubectl rollout status`)."""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opsctl import printing
from opsctl.client import watch_symbols
from opsctl.kube import Obj, WatchEvent
from opsctl.options import Format, Output, Target
from opsctl.render import resource_name
from opsctl.tables import Column, format_table

CLEAR = "\x1b[H\x1b[2J"
REFRESH_SECONDS = 2
"""How often a redrawn view re-reads what the object watch does not carry (its Events)."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Watched:
    """What `get -w` follows: TradingSymbols of a namespace (None: all), optionally by label or by name."""

    target: Target
    namespace: str | None
    selector: str | None
    names: Sequence[str]
    version: str

    def events(self) -> Iterator[WatchEvent]:
        for event in watch_symbols(self.target, self.namespace, self.version, None, self.selector):
            if not self.names or event.object.get("metadata", {}).get("name") in self.names:
                yield event


def watch_objects(watched: Watched, out: Output) -> None:
    """Each changed object in a machine-readable format (a YAML document per change, as kubectl prints)."""
    sys.stdout.flush()  # what was printed before the watch reaches a pipe now, not when a buffer fills
    for event in watched.events():
        if out.format.format is Format.YAML:
            print("---")
        printing.emit(out, event.object, [resource_name(event.object)])
        sys.stdout.flush()


def watch_rows(watched: Watched, columns: list[Column], row_of: Callable[[Obj], list[str]], widths: list[int]) \
        -> None:
    """After the first table, a row whenever an object's row would read differently (a deletion: its last row,
    phase Deleted), aligned with the first table. Runs until interrupted."""
    phase = [c.header for c in columns].index("PHASE")
    last: dict[tuple[str, str], list[str]] = {}
    sys.stdout.flush()  # the first table reaches a pipe (`| head`, `| grep`) now, not when a buffer fills
    for event in watched.events():
        meta = event.object.get("metadata") or {}
        key, row = (str(meta.get("namespace")), str(meta.get("name"))), row_of(event.object)
        if event.type == "DELETED":
            row[phase] = "Deleted"
        if last.get(key) != row:
            last[key] = row
            print("\n".join(format_table(columns, [row], None, header=False, min_widths=widths)), flush=True)


def changes(target: Target, name: str, period: int = REFRESH_SECONDS) -> Iterator[None]:
    """Wake-ups to re-read a TradingSymbol's view: each change of the object, and every `period` seconds for
    what its watch does not carry (Events). Ends when the object is deleted."""
    version = ""
    while True:
        for event in watch_symbols(target, target.namespace, version, time.monotonic() + period, name=name):
            version = str(event.object.get("metadata", {}).get("resourceVersion") or version)
            if event.type == "DELETED":
                return
            yield None
        yield None


def redraw(view: Callable[[], tuple[Any, str]], wakeups: Iterator[None]) -> None:
    """Print the view, then again whenever its key changes (the object's version, its Events): in place on a
    terminal, one after another (a blank line between) on a pipe."""
    tty = sys.stdout.isatty()
    last_key: Any = object()
    first = True
    for _ in _first_then(wakeups):
        key, text = view()
        if key == last_key:
            continue
        last_key = key
        if tty:
            sys.stdout.write(CLEAR)
        elif not first:
            sys.stdout.write("\n")
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()
        first = False


def _first_then(wakeups: Iterator[None]) -> Iterator[None]:
    yield None
    yield from wakeups


class ProgressLines:
    """Progress of a wait on stderr: a line each time it reads differently."""

    def __init__(self, line: Callable[[Obj], str]) -> None:
        self._line = line
        self._last = ""

    def __call__(self, ts: Obj) -> None:
        text = self._line(ts)
        if text != self._last:
            printing.note(text)
            self._last = text
