"""What every opsctl command shares: global options, output modes, error handling, plain printing."""

from __future__ import annotations

import enum
import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import click
import typer
import typer.exceptions
from rich.console import Console
from rich.text import Text

from opsctl import render
from opsctl.client import Target, connect
from opsctl.errors import ExitCode, OpsctlError

# Scripts read the table from a pipe: do not squeeze it to the 80 columns rich assumes there.
console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)

P = ParamSpec("P")
R = TypeVar("R")


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@dataclass
class Options:
    kubeconfig: str | None
    context: str | None
    namespace: str | None
    output: Output

    def target(self) -> Target:
        return connect(self.kubeconfig, self.context, self.namespace)


NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", "-n", help="Namespace (default: the kubeconfig context's, else `default`)")]
OutputOpt = Annotated[Output | None, typer.Option("--output", "-o", help="table, json or yaml")]
NameArg = Annotated[str, typer.Argument(
    metavar="SYMBOL", help="The TradingSymbol's metadata.name, e.g. `spy` for the SPY manifest")]


# Exits and usage errors are typer's to print (typer 0.29 vendors its own click; the click package's too).
PASS_THROUGH = (typer.Exit, typer.Abort, typer.exceptions.TyperException,
                click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort)


def _fail(code: ExitCode, message: str) -> typer.Exit:
    print(f"opsctl: error: {message}", file=sys.stderr)
    return typer.Exit(int(code))


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Expected failures become one line on stderr and their exit code; unexpected ones too, with code 1
    (and a traceback when OPSCTL_DEBUG is set)."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PASS_THROUGH:
            raise
        except OpsctlError as error:
            raise _fail(error.code, error.message) from None
        except Exception as error:
            if os.environ.get("OPSCTL_DEBUG"):
                traceback.print_exc()
            raise _fail(ExitCode.ERROR, f"unexpected {type(error).__name__}: {error}") from None
    return wrapper


def _options(ctx: typer.Context, namespace: str | None = None, output: Output | None = None) -> Options:
    """The global options, with -n/-o given after the command taking precedence."""
    options: Options = ctx.obj
    if namespace is not None:
        options.namespace = namespace
    if output is not None:
        options.output = output
    return options


def _emit(options: Options, data: Any) -> bool:
    """Print machine-readable output when asked; True if printed."""
    if options.output is Output.TABLE:
        return False
    print(render.dump(data, options.output.value))
    return True


def _say(text: str, style: str | None = None) -> None:
    """A line of literal text (API strings are not rich markup)."""
    console.print(Text(text, style=style or ""))


