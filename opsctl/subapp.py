"""What opsctl's sub-apps (policy, slo) share with the main app without importing it (main imports them):
the output format, one-line errors with their exit codes (the main app's own helpers, under these names)."""

from __future__ import annotations

from typing import Any

import typer

from opsctl import render
from opsctl.cli_support import Output, OutputOpt, _fail, handles_errors

Format = Output
FormatOpt = OutputOpt


def output_format(ctx: typer.Context, given: Format | None) -> Format:
    """-o after the command, else the global -o (the main app's options object), else table."""
    if given is not None:
        return given
    return Format(str(getattr(ctx.obj, "output", Format.TABLE)))


def emit(data: Any, fmt: Format) -> bool:
    """Print json/yaml; False for table (the caller prints its own)."""
    if fmt is Format.TABLE:
        return False
    print(render.dump(data, fmt.value))
    return True


fail = _fail
exits_on_error = handles_errors
