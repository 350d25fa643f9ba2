"""The option sets every opsctl verb shares (their fields are options, accepted before or after the verb:
see opsctl.kit), and the parsers of their values: -o (kubectl's output formats) and --request-timeout."""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:  # loaded by `connect`: commands that never reach the API do not import it
    from opsctl.kube import Kube

T = TypeVar("T")
DEFAULT_REQUEST_TIMEOUT = 5.0


def option_set(cls: type[T]) -> type[T]:
    """Mark a dataclass as an option set: its fields become options of the verbs that take it."""
    cls.__opsctl_option_set__ = True  # type: ignore[attr-defined]
    return cls


# Values --------------------------------------------------------------------------------------------


class Format(enum.StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"
    JSONPATH = "jsonpath"


@dataclass(frozen=True)
class OutputFormat:
    format: Format
    template: str = ""

    @property
    def tabular(self) -> bool:
        return self.format in (Format.TABLE, Format.WIDE)


def parse_output(value: str | OutputFormat) -> OutputFormat:
    """`table`, `wide`, `json`, `yaml`, `name` or `jsonpath=TEMPLATE` (kubectl's -o)."""
    if isinstance(value, OutputFormat):
        return value
    kind, equals, template = value.partition("=")
    if kind == "jsonpath":
        if not equals or not template.strip():
            raise typer.BadParameter("jsonpath needs a template: -o jsonpath='{.metadata.name}'")
        from opsctl import jsonpath

        try:
            jsonpath.parse(template)
        except jsonpath.JSONPathError as error:
            raise typer.BadParameter(f"bad jsonpath template: {error}") from None
        return OutputFormat(Format.JSONPATH, template)
    try:
        return OutputFormat(Format(value))
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use table, wide, json, yaml, name or jsonpath=TEMPLATE") from None


def parse_duration(value: str | float) -> float:
    """Seconds of `5`, `5s`, `500ms`, `2m` (kubectl's --request-timeout); 0 means no limit."""
    if isinstance(value, float | int):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", value)
    if not match:
        raise typer.BadParameter(f"{value!r} is not a duration (e.g. 5s, 500ms, 1m)")
    number, unit = float(match[1]), match[2] or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]



# Option sets -----------------------------------------------------------------------------------------------


@option_set
@dataclass
class Output:
    """How a command prints its result."""

    output: Annotated[OutputFormat | None, typer.Option(
        "--output", "-o", parser=parse_output, metavar="FORMAT",
        help="table (default), wide, json, yaml, name or jsonpath=TEMPLATE")] = None

    @property
    def format(self) -> OutputFormat:
        return self.output or OutputFormat(Format.TABLE)


@option_set
@dataclass
class Cluster:
    """Which API server and namespace a command acts on."""

    namespace: Annotated[str | None, typer.Option(
        "--namespace", "-n", metavar="NAMESPACE",
        help="Namespace (default: the kubeconfig context's, else `default`)")] = None
    context: Annotated[str | None, typer.Option(
        "--context", metavar="CONTEXT", help="kubeconfig context (default: the current one)")] = None
    kubeconfig: Annotated[str | None, typer.Option(
        "--kubeconfig", metavar="PATH",
        help="kubeconfig file(s) (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)")] = None
    request_timeout: Annotated[float | None, typer.Option(
        "--request-timeout", parser=parse_duration, metavar="DURATION",
        help=f"Longest wait for each answer of the API server or Prometheus, e.g. 5s, 500ms, 1m; 0: no limit "
             f"[default: {DEFAULT_REQUEST_TIMEOUT:g}s]")] = None

    @property
    def timeout(self) -> float | None:
        """Seconds per request; None for no limit."""
        seconds = DEFAULT_REQUEST_TIMEOUT if self.request_timeout is None else self.request_timeout
        return seconds or None

    connected: list[Target] = dataclasses.field(default_factory=list, init=False, repr=False)

    def connect(self) -> Target:
        """The API client of the kubeconfig context (or the pod's service account) and the namespace."""
        from audit.identity import opsctl_actor
        from opsctl.kube import Kube
        from opsctl.kubeconfig import load_endpoint

        endpoint = load_endpoint(self.kubeconfig, self.context, self.namespace)
        target = Target(Kube(endpoint, self.timeout), endpoint.namespace, opsctl_actor(endpoint.user))
        self.connected.append(target)
        return target

    def close(self) -> None:
        """Close the connections `connect` opened (the verb wrapper calls this when the verb ends)."""
        for target in self.connected:
            target.kube.close()


@dataclass
class Target:
    """Where commands act: the API client and the namespace."""

    kube: Kube
    namespace: str
    actor: str
    """Who opsctl acts for, stamped on every change it makes (the audit trail's `who`)."""
