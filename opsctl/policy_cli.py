"""opsctl policy: lint policy files and check TradingSymbol manifests against admission and risk policies."""

from __future__ import annotations

import pathlib
from typing import Annotated

import typer

from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output
from policies.lint import check_manifests, lint
from policies.loader import DEFAULTS_DIR, PolicyError

app = kit.group("Lint policy files; check TradingSymbol manifests against admission and risk policies.")

DirArg = Annotated[pathlib.Path, typer.Argument(
    metavar="DIR", help="Policy directory, searched recursively for *.yaml/*.yml", show_default="the shipped policies")]


def _finish(out: Output, problems: list[PolicyError], what: str) -> None:
    """Print every problem (`file: location: message`); exit 6 when there are any."""
    if not printing.emit(out, [{"file": p.file, "location": p.location, "message": p.message} for p in problems]):
        for problem in problems:
            printing.say(str(problem))
    if problems:
        raise OpsctlError(ExitCode.REJECTED, f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {what}")
    if out.format.tabular:
        printing.note(f"{what}: ok")


@verb(app, "lint")
def lint_command(out: Output, directory: DirArg = DEFAULTS_DIR) -> None:
    """Validate every policy file; prints each problem as `file: location: message` (exit 6 if any).
    -o json|yaml: the list of {file, location, message}."""
    _finish(out, lint(directory), str(directory))


@verb(app, "check")
def check_command(
    out: Output,
    files: Annotated[list[pathlib.Path], typer.Argument(metavar="FILE...", help="TradingSymbol manifests")],
    policies: Annotated[pathlib.Path, typer.Option(help="Policy directory", show_default="the shipped policies")]
    = DEFAULTS_DIR,
    admission: Annotated[str, typer.Option(help="AdmissionPolicy name")] = "default",
) -> None:
    """Check TradingSymbol manifests against the admission policy and the risk policy each one names, and that no
    two claim one symbol in one namespace (one trader per symbol; pass a namespace's manifests together). Exit 6
    if any breaks one. Locations are `NAME: field`."""
    what = str(files[0]) if len(files) == 1 else f"{len(files)} manifest files"
    _finish(out, check_manifests(files, policies, admission), what)
