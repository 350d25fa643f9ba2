"""The one CLI kit every opsctl command is built on (and `python -m drills`, which runs the same backup and
drill commands): verbs that take option sets (opsctl.options), one error handler with the exit codes of
`opsctl.errors`, and lazily loaded command groups.

A verb is a plain function registered with `@verb(app)`. Parameters annotated with an option set (`Cluster`,
`Output`, `opsctl.storage.Storage`, ...) receive that set, built from the options given anywhere on the command
line: before the group (`opsctl -n prod get`), after it (`opsctl backup --bucket b list`) or after the verb
(`opsctl get -n prod`, `opsctl backup list --bucket b`); the one nearest the verb wins. This is the Argo
Rollouts plugin's shape (`cmd/abort/abort.go`: shared options plus one function per verb)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
import typer.core
import typer.main

from opsctl.errors import ExitCode, OpsctlError

T = TypeVar("T")
GIVEN = "opsctl.given"
"""ctx.meta key: option values given on the command line so far, by field name (nearest the verb last)."""


# Option sets -----------------------------------------------------------------------------------------------


def _is_set(annotation: Any) -> bool:
    return inspect.isclass(annotation) and getattr(annotation, "__opsctl_option_set__", False)


def _fields(cls: type) -> list[tuple[str, Any]]:
    hints = get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _record(ctx: typer.Context, values: dict[str, Any]) -> None:
    ctx.meta.setdefault(GIVEN, {}).update({k: v for k, v in values.items() if v is not None})


def build(ctx: typer.Context, cls: type[T]) -> T:
    """An option set from the values given on the command line (the dataclass's defaults elsewhere)."""
    given = ctx.meta.get(GIVEN, {})
    return cls(**{name: given[name] for name, _ in _fields(cls) if name in given})


def parsed(ctx: typer.Context, cls: type[T]) -> T:
    """An option set from what the parser has seen so far, nearest the verb first: shell completion runs no
    callbacks, so `build` has nothing yet."""
    values: dict[str, Any] = {}
    chain: Any = ctx  # parents are typer's vendored click contexts
    while chain is not None:
        for name, value in chain.params.items():
            if value is not None:
                values.setdefault(name, value)
        chain = chain.parent
    return cls(**{name: values[name] for name, _ in _fields(cls) if name in values})


# Errors ----------------------------------------------------------------------------------------------------

# Exits and usage errors (typer's BadParameter is a TyperException) are typer's to print.
PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException)


def program_name(ctx: typer.Context) -> str:
    """`opsctl`, or `drills` for `python -m drills`: the program the user ran, for error lines."""
    root = ctx.find_root()
    return str(getattr(root.command, "program", None) or root.info_name or "opsctl")


def fail(ctx: typer.Context, code: ExitCode, message: str) -> typer.Exit:
    """Print the one error line; the Exit to raise."""
    print(f"{program_name(ctx)}: error: {message}", file=sys.stderr)
    return typer.Exit(int(code))


def _drills_code(error: Exception) -> tuple[ExitCode, str] | None:
    """The exit code and message of a failure of the drills package (loaded only by backup/drill verbs)."""
    errors = sys.modules.get("drills.errors")
    scenarios = sys.modules.get("drills.scenarios")
    if errors is not None and isinstance(error, errors.DrillsError):
        return DRILLS_EXIT[int(error.code)], error.message
    if scenarios is not None and isinstance(error, scenarios.ScenarioError):
        return ExitCode.USAGE, str(error)
    return None


DRILLS_EXIT = {0: ExitCode.OK, 1: ExitCode.ERROR, 2: ExitCode.USAGE, 3: ExitCode.NOT_FOUND,
               4: ExitCode.UNREACHABLE, 6: ExitCode.REJECTED, 7: ExitCode.CHECK_FAILED}
"""drills.errors.Exit (the library's failure kinds) -> the exit code the CLI promises."""


def _quiet_stdout() -> None:
    """The reader of stdout went away (`| head -1`): drop what is still buffered, as other Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _flush() -> None:
    """Flush stdout here, where a closed pipe is handled, not at exit (where Python would print a traceback)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()


def run_handled(ctx: typer.Context, fn: Callable[[], T]) -> T:
    """Run a verb: expected failures become one line and their exit code; unexpected ones too, with code 1
    (and a traceback when OPSCTL_DEBUG is set); a closed pipe ends quietly with 0; Ctrl-C with 130."""
    try:
        result = fn()
        sys.stdout.flush()
        return result
    except PASS_THROUGH:
        _flush()
        raise
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        _flush()
        raise typer.Exit(130) from None
    except OpsctlError as error:
        _flush()
        raise fail(ctx, error.code, error.message) from None
    except Exception as error:
        _flush()
        known = _drills_code(error)
        if known is not None:
            raise fail(ctx, *known) from None
        if os.environ.get("OPSCTL_DEBUG") or os.environ.get("DRILLS_DEBUG"):
            traceback.print_exc()
        raise fail(ctx, ExitCode.ERROR, f"unexpected {type(error).__name__}: {error} (OPSCTL_DEBUG=1 shows where)") \
            from None


# Verbs and groups ------------------------------------------------------------------------------------------


def _option_parameters(classes: list[type], taken: set[str]) -> list[inspect.Parameter]:
    out = []
    for cls in classes:
        for name, annotation in _fields(cls):
            if name not in taken:
                out.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                             annotation=annotation))
                taken.add(name)
    return out


CTX = "opsctl_click_context"


def _install_signature(wrapper: Callable[..., Any], parameters: list[inspect.Parameter]) -> None:
    """What typer reads to build the command: the parameters with their (evaluated) annotations."""
    context = inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    wrapper.__signature__ = inspect.Signature([*parameters, context])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*parameters, context]}


def verb(app: typer.Typer, name: str | None = None, **settings: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Register a function as a command of `app`; its option-set parameters are filled from the command line."""
    def register(fn: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(fn, eval_str=True)
        sets = {p.name: p.annotation for p in signature.parameters.values() if _is_set(p.annotation)}
        own = [p for p in signature.parameters.values() if p.name not in sets]
        options = _option_parameters(list(sets.values()), {p.name for p in own})
        option_names = [p.name for p in options]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> T:
            ctx: typer.Context = kwargs.pop(CTX)
            _record(ctx, {n: kwargs.pop(n) for n in option_names})
            built = {n: build(ctx, cls) for n, cls in sets.items()}
            try:
                return run_handled(ctx, lambda: fn(**kwargs, **built))
            finally:
                for option_set in built.values():
                    getattr(option_set, "close", lambda: None)()

        _install_signature(wrapper, [*own, *options])
        app.command(name, **settings)(wrapper)
        return fn
    return register


def group(help: str, *sets: type, **settings: Any) -> typer.Typer:
    """A command group whose own options (before its verbs) are those of `sets`."""
    app = typer.Typer(help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                      pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]},
                      cls=Group, **settings)
    parameters = _option_parameters(list(sets), set())
    names = [p.name for p in parameters]

    def callback(**kwargs: Any) -> None:
        ctx: typer.Context = kwargs.pop(CTX)
        _record(ctx, {n: kwargs.pop(n) for n in names})

    callback.__doc__ = help
    _install_signature(callback, parameters)
    app.callback()(callback)
    return app


@dataclass(frozen=True)
class Lazy:
    """A command group loaded when used: `module` has a Typer `app`; `help` is shown without loading it."""

    module: str
    help: str


class Group(typer.core.TyperGroup):
    """A command group whose help lists each command's first sentence whole (click would cut it at 45 columns)."""

    # Any: typer's group takes its own vendored click's types, which it does not export.
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, self.command_help(ctx, name)) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def command_help(self, ctx: Any, name: str) -> str:
        command = self.get_command(ctx, name)
        return str(command.get_short_help_str(limit=1000)) if command is not None else ""


class LazyGroup(Group):
    """A group whose sub-groups are imported only when named: `opsctl get` does not load boto3."""

    lazy: dict[str, Lazy] = {}
    program = ""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in self.commands and name in self.lazy:
            loaded = typer.main.get_command(importlib.import_module(self.lazy[name].module).app)
            loaded.name = name
            self.commands[name] = loaded
        return super().get_command(ctx, name)

    def command_help(self, ctx: Any, name: str) -> str:
        """A lazy group's help without loading it."""
        return self.lazy[name].help if name in self.lazy and name not in self.commands else \
            super().command_help(ctx, name)


def program(name: str, help: str, epilog: str, lazy: dict[str, Lazy], *sets: type,
            version: Callable[[], str] | None = None) -> typer.Typer:
    """The root of a program: global options (`sets`, and --version), verbs, and lazily loaded groups."""
    group_class = type("ProgramGroup", (LazyGroup,), {"lazy": lazy, "program": name})
    app = typer.Typer(help=help, epilog=epilog, no_args_is_help=True, add_completion=True, rich_markup_mode=None,
                      pretty_exceptions_enable=False, cls=group_class,
                      context_settings={"help_option_names": ["-h", "--help"]})
    parameters = _option_parameters(list(sets), set())
    names = [p.name for p in parameters]

    def show_version(value: bool) -> None:
        if value and version is not None:
            print(version())
            raise typer.Exit(0)

    if version is not None:
        flag = Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                            help="Print the client version")]
        parameters.append(inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=flag))

    def callback(**kwargs: Any) -> None:
        ctx: typer.Context = kwargs.pop(CTX)
        kwargs.pop("version", None)
        _record(ctx, {n: kwargs.pop(n) for n in names})

    callback.__doc__ = help
    _install_signature(callback, parameters)
    app.callback()(callback)
    return app
