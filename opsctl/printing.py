"""What opsctl prints: lines for people (stdout for the result, stderr for notes), kubectl-like tables sized to
the terminal, and the machine-readable formats of -o."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from opsctl.errors import ExitCode, OpsctlError
from opsctl.options import Format, Output
from opsctl.tables import Column, format_table


def terminal_width() -> int | None:
    """Columns of the terminal stdout is; None for a pipe or a file (lines are never wrapped there)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def say(text: str = "") -> None:
    """A line on stdout, printed literally."""
    print(text)


def note(text: str) -> None:
    """A line for the person on stderr (stdout stays the result)."""
    print(text, file=sys.stderr)


def emit(out: Output, data: Any, names: list[str] | None = None) -> bool:
    """Print data in the machine-readable format asked for; False for table/wide (the caller prints those).
    `names` are the `-o name` lines (`tradingsymbol.trading.tradeops.io/spy`); None when there are none."""
    chosen = out.format
    if chosen.tabular:
        return False
    if chosen.format is Format.NAME:
        if names is None:
            raise OpsctlError(ExitCode.USAGE, "-o name prints API objects; this command has none: use -o json, "
                                              "yaml or jsonpath")
        if names:
            print("\n".join(names))
        return True
    if chosen.format is Format.JSONPATH:
        from opsctl import jsonpath

        sys.stdout.write(jsonpath.execute(chosen.template, data))  # as kubectl: no newline added
        sys.stdout.flush()
        return True
    print(dump(data, chosen.format))
    return True


def dump(data: Any, fmt: Format) -> str:
    """JSON (kubectl's 4-space indent) or YAML text of data."""
    if fmt is Format.YAML:
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return str(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)).rstrip("\n")
    import json

    return json.dumps(data, indent=4, ensure_ascii=False)


def table(columns: list[Column], rows: list[list[str]], title: str | None = None, header: bool = True) -> None:
    """A kubectl-like table on stdout (`tables.format_table`), sized to the terminal when there is one."""
    lines = format_table(columns, rows, terminal_width(), header)
    if title is not None:
        print(f"{title}:")
        lines = ["  " + line for line in lines] if lines else ["  <none>"]
    if lines:
        print("\n".join(lines))
