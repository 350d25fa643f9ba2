"""Runs the Pulumi program under `pulumi.runtime.set_mocks` with a stack's config file and records every
resource it registers (type, name, resolved inputs in Kubernetes/AWS wire names), so each test checks
one rule on plain dicts. Mocks are set before the program is imported, as Pulumi's testing guide asks."""

from __future__ import annotations

import functools
import gc
import pathlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


SIG_KEY = "4dabf18193072939515e22adb298388d"  # Pulumi's wire marker for special values
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # ... and the one meaning "secret"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The value with Pulumi's secret envelopes removed (at any depth)."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


@dataclass
class Recorded:
    typ: str
    name: str
    raw: dict[str, Any]

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with secret envelopes removed; `raw` keeps them."""
        return reveal(self.raw)

    @property
    def kind(self) -> str:
        return self.typ.rsplit(":", 1)[-1]


@dataclass
class Built:
    stack: str
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def of_kind(self, kind: str) -> list[Recorded]:
        return [r for r in self.resources if r.kind == kind]

    def one(self, typ: str, name: str) -> Recorded:
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"{typ} {name}: {len(found)} registered"
        return found[0]


class RecordingMocks(pulumi.runtime.Mocks):
    """Every resource echoes its inputs; the few computed outputs the program reads get stand-ins."""

    def __init__(self, built: Built) -> None:
        self.built = built

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.built.resources.append(Recorded(args.typ, args.name, dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-{args.name}"
        if args.typ.startswith("aws:"):
            outputs.setdefault("arn", f"arn:aws:mock:::{args.name}")
            outputs.setdefault("bucket", f"{args.inputs.get('bucketPrefix', args.name)}mock")
            outputs.setdefault("name", args.name)
        if args.typ == "aws:iam/accessKey:AccessKey":
            outputs["secret"] = "mock-secret-key"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise AssertionError(f"the program must not invoke {args.token} (no provider under mocks)")


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's config as Pulumi hands it to the program (every value a string)."""
    config = yaml.safe_load((ROOT / "infra" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key: str(value) for key, value in config.items()}


def build(stack: str) -> Built:
    """Run the program for a stack under mocks and wait until every resource has registered."""
    built = Built(stack)
    pulumi.runtime.set_mocks(RecordingMocks(built), project="tradeops", stack=stack, preview=False)
    pulumi.runtime.set_all_config(stack_config(stack))
    from infra import settings  # after set_mocks: the program sees the mocked runtime
    from infra import stack as program

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        outputs = program.build(settings.load())
        return pulumi.Output.from_input(outputs).apply(built.outputs.update)

    run()
    return built


@functools.cache
def built(stack: str) -> Built:
    """The stack built once per test session (the tests only read what it recorded)."""
    result = build(stack)
    # Pulumi's synchronous helpers leave event loops open (one per worker thread that awaited);
    # collect them here, quietly, rather than in whichever test the garbage collector next runs in.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    return result


def pods(built: Built) -> list[tuple[str, dict[str, Any]]]:
    """(resource name, pod spec) of every workload the program defines itself."""
    found = []
    for r in built.resources:
        spec = r.inputs.get("spec", {})
        if r.kind in ("Deployment", "StatefulSet"):
            found.append((r.name, spec["template"]["spec"]))
        elif r.kind == "CronJob":
            found.append((r.name, spec["jobTemplate"]["spec"]["template"]["spec"]))
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions In) selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is used here"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True
