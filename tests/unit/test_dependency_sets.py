"""Each component's dependency set (the base dependencies plus its extra, pyproject.toml) holds everything the
component's code imports, followed through the first-party modules it reaches; each image installs exactly
its component's extra and copies exactly the packages that closure reaches."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from functools import cache

import pytest
from packaging.requirements import Requirement

from tests.import_closure import ROOT, closure, first_party_modules

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _distribution_requirements(dist: str, extra: str) -> frozenset[tuple[str, frozenset[str]]]:
    """What installing `dist[extra]` (extra "" for none) pulls in directly, from the installed metadata."""
    found = set()
    for line in importlib.metadata.requires(dist) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        found.add((canonical(requirement.name), frozenset(requirement.extras)))
    return frozenset(found)


def installed_set(requirements: list[str]) -> set[str]:
    """Every distribution these requirements install, transitively; our own `tradeops[...]` extras expand."""
    seen: set[tuple[str, str]] = set()
    result: set[str] = set()
    todo = [(canonical(r.name), frozenset(r.extras)) for r in map(Requirement, requirements)]
    while todo:
        name, extras = todo.pop()
        if name == "tradeops":
            for extra in extras:
                todo.extend((canonical(r.name), frozenset(r.extras)) for r in map(Requirement, EXTRAS[extra]))
            continue
        for extra in ("", *extras):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            result.add(name)
            todo.extend(_distribution_requirements(name, extra))
    return result


def dependency_set(component: str) -> set[str]:
    return installed_set([*PROJECT["dependencies"], *EXTRAS[component]])


@cache
def _providers() -> dict[str, set[str]]:
    return {module: {canonical(d) for d in dists}
            for module, dists in importlib.metadata.packages_distributions().items()}


def missing_modules(roots: list[str], allowed: set[str]) -> dict[str, set[str]]:
    """Third-party modules the closure of `roots` imports that no distribution of `allowed` provides."""
    _, external = closure(roots)
    missing = {}
    for module in sorted(external):
        providers = _providers().get(module)
        assert providers, f"{module} is imported but no installed distribution provides it"
        if not providers & allowed:
            missing[module] = providers
    return missing


def modules_of(*packages: str, leave_out: tuple[str, ...] = ()) -> list[str]:
    return [m for p in packages for m in first_party_modules(p) if m not in leave_out]


# Component → (its extra, the modules it runs).
COMPONENTS = {
    "operator": ("operator", modules_of("trading_operator")),
    "runtime": ("runtime", modules_of("trading_runtime")),
    # The tools image: backups and drills, the audit recorder and archive, the reports, opsctl (without its
    # `backtest` and `model` sub-commands, which need the backtest and ml extras and load only when called).
    "tools": ("tools", modules_of("drills", "audit", "reports", "opsctl",
                                  leave_out=("opsctl.backtest_cli", "opsctl.model_cli"))),
    "backtest": ("backtest", modules_of("backtest")),
    # Training and the registry (the retraining Job's image, deploy/docker/modelops.Dockerfile).
    "modelops": ("ml", modules_of("modelops")),
    "devstack": ("devstack", modules_of("devstack")),
    "infra": ("infra", modules_of("infra")),
}


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_imports_nothing_outside_its_dependency_set(component):
    extra, roots = COMPONENTS[component]
    assert missing_modules(roots, dependency_set(extra)) == {}


def test_the_check_catches_a_component_that_needs_more_than_its_set():
    # The runtime's pricing needs numpy and scipy, which the operator's set must not hold.
    missing = missing_modules(modules_of("trading_runtime"), dependency_set("operator"))
    assert {"numpy", "scipy", "pyarrow", "psycopg", "redis"} <= set(missing)


def test_the_operator_and_the_runtime_carry_nothing_of_each_other():
    operator, runtime = dependency_set("operator"), dependency_set("runtime")
    assert not {"numpy", "scipy", "vollib", "pyarrow", "psycopg", "redis", "websockets"} & operator
    assert not {"kopf", "kubernetes", "kmock", "jinja2"} & runtime
    for component in ("operator", "runtime", "tools"):
        assert not {"kmock", "pytest", "mypy", "mlflow", "pulumi"} & dependency_set(component), component


DOCKERFILES = {"operator": "operator", "runtime": "runtime", "tools": "tools", "modelops": "ml"}


def _pip_installs(dockerfile: str) -> list[str]:
    return re.findall(r"pip install [^\n]*?\"?\.\[([a-z,]+)\]\"?", dockerfile)


@pytest.mark.parametrize("image", DOCKERFILES)
def test_each_image_installs_only_its_components_extra_and_copies_what_it_imports(image):
    dockerfile = (ROOT / "deploy" / "docker" / f"{image}.Dockerfile").read_text()
    assert _pip_installs(dockerfile) == [DOCKERFILES[image]], "one pip install of the component's extra"
    copied = set(re.findall(r"^COPY (?!--from)(\w+) \./\w+$", dockerfile, flags=re.MULTILINE))
    reached, _ = closure(COMPONENTS[image][1])
    assert copied == {m.split(".")[0] for m in reached}
