"""What opsctl's sub-apps (policy, slo) share with the main app without importing it (main imports them):
the output format, one-line errors with their exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click
import typer
import typer.exceptions

from opsctl import render
from opsctl.cli_support import Output, OutputOpt
from opsctl.errors import ExitCode, OpsctlError

P = ParamSpec("P")
R = TypeVar("R")


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


def fail(code: ExitCode, message: str) -> typer.Exit:
    print(f"opsctl: error: {message}", file=sys.stderr)
    return typer.Exit(int(code))


# Exits and usage errors are typer's to print (typer 0.29 vendors its own click; the click package's too).
PASS_THROUGH = (typer.Exit, typer.Abort, typer.exceptions.TyperException,
                click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort)


def exits_on_error(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become one line on stderr and their exit code; unexpected ones too, with code 1 (and
    a traceback when OPSCTL_DEBUG is set): as the main app's commands do."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PASS_THROUGH:
            raise
        except OpsctlError as error:
            raise fail(error.code, error.message) from None
        except Exception as error:
            if os.environ.get("OPSCTL_DEBUG"):
                traceback.print_exc()
            raise fail(ExitCode.ERROR, f"unexpected {type(error).__name__}: {error}") from None
    return wrapper
