"""What opsctl's sub-apps (policy, slo) share with the main app without importing it (main imports them):
the output format, one-line errors with their exit codes."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import click
import typer

from opsctl import render
from opsctl.errors import ExitCode, OpsctlError

P = ParamSpec("P")
R = TypeVar("R")


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


FormatOpt = Annotated[Format | None, typer.Option("--output", "-o", help="table, json or yaml")]


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


def fail(code: ExitCode, message: str) -> typer.Exit:
    print(f"opsctl: error: {message}", file=sys.stderr)
    return typer.Exit(int(code))


def exits_on_error(fn: Callable[P, R]) -> Callable[P, R]:
    """OpsctlError becomes one line on stderr and its exit code (as the main app's commands do)."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except OpsctlError as error:
            raise fail(error.code, error.message) from None
    return wrapper
