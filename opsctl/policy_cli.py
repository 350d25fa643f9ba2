"""opsctl policy: lint policy files and check TradingSymbol manifests against admission and risk policies."""

from __future__ import annotations

import pathlib
import sys
from typing import Annotated

import typer

from opsctl.errors import ExitCode
from opsctl.subapp import FormatOpt, emit, exits_on_error, fail, output_format
from policies.lint import check_manifests, lint
from policies.loader import DEFAULTS_DIR, PolicyError

app = typer.Typer(help="Lint policy files; check TradingSymbol manifests against admission and risk policies.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

DirArg = Annotated[pathlib.Path, typer.Argument(
    metavar="DIR", help="Policy directory, searched recursively for *.yaml/*.yml", show_default="the shipped policies")]


def _finish(ctx: typer.Context, problems: list[PolicyError], given: FormatOpt, what: str) -> None:
    """Print every problem (`file: location: message`); exit 6 when there are any."""
    fmt = output_format(ctx, given)
    if not emit([{"file": p.file, "location": p.location, "message": p.message} for p in problems], fmt):
        for problem in problems:
            print(problem)
    if problems:
        raise fail(ExitCode.REJECTED, f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {what}")
    if fmt.value == "table":
        print(f"{what}: ok", file=sys.stderr)


@app.command("lint")
@exits_on_error
def lint_command(ctx: typer.Context, directory: DirArg = DEFAULTS_DIR, output: FormatOpt = None) -> None:
    """Validate every policy file; prints each problem as `file: location: message` (exit 6 if any).
    -o json|yaml: the list of {file, location, message}."""
    _finish(ctx, lint(directory), output, str(directory))


@app.command("check")
@exits_on_error
def check_command(
    ctx: typer.Context,
    files: Annotated[list[pathlib.Path], typer.Argument(metavar="FILE...", help="TradingSymbol manifests")],
    policies: Annotated[pathlib.Path, typer.Option(help="Policy directory", show_default="the shipped policies")]
    = DEFAULTS_DIR,
    admission: Annotated[str, typer.Option(help="AdmissionPolicy name")] = "default",
    output: FormatOpt = None,
) -> None:
    """Check TradingSymbol manifests against the admission policy and the risk policy each one names
    (exit 6 if any breaks one). Locations are `NAME: field`."""
    what = str(files[0]) if len(files) == 1 else f"{len(files)} manifest files"
    _finish(ctx, check_manifests(files, policies, admission), output, what)
