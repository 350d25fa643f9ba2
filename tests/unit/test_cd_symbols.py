"""CD applies everything the repository declares under deploy/symbols/ (recursively, the 12-symbol example
included), in an order kubectl can apply: every object names its namespace, a namespace the Pulumi program
does not create comes before the objects in it, and nothing is declared twice."""

from __future__ import annotations

import os
import pathlib
import shlex

import yaml

from infra.settings import Settings
from tests.unit.infra_harness import ROOT

CD = yaml.safe_load((ROOT / ".github" / "workflows" / "cd.yml").read_text())
RUNS = [step.get("run", "") for step in CD["jobs"]["deploy"]["steps"]]
(APPLY,) = [shlex.split(run) for run in RUNS if run.startswith("kubectl apply")]
TRADING = Settings.__dataclass_fields__["trading_namespace"].default


def kubectl_files(argv: list[str]) -> list[pathlib.Path]:
    """The files `kubectl apply -f DIR [-R]` reads, in its order (a lexical walk; .json/.yaml/.yml only)."""
    target = ROOT / argv[argv.index("-f") + 1]
    recursive = "-R" in argv or "--recursive" in argv
    found = []
    for directory, subdirectories, files in os.walk(target):
        subdirectories.sort()
        if not recursive:
            subdirectories.clear()
        found += [pathlib.Path(directory, f) for f in sorted(files) if f.endswith((".json", ".yaml", ".yml"))]
    # os.walk lists a directory's files before descending; kubectl's walk interleaves them lexically.
    return sorted(found, key=lambda p: p.relative_to(target).parts)


def applied(argv: list[str]) -> list[dict]:
    return [doc for path in kubectl_files(argv) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_cd_applies_the_whole_tree_server_side_without_forcing_a_namespace():
    assert APPLY[:3] == ["kubectl", "apply", "--server-side"]
    assert "-R" in APPLY
    assert APPLY[APPLY.index("-f") + 1] == "deploy/symbols/"
    # Every object says where it goes.
    assert "-n" not in APPLY
    assert "--namespace" not in APPLY


def test_the_twelve_symbol_example_is_applied_with_spy_qqq_and_es():
    symbols = [doc for doc in applied(APPLY) if doc["kind"] == "TradingSymbol"]
    by_namespace: dict[str, set[str]] = {}
    for doc in symbols:
        by_namespace.setdefault(doc["metadata"]["namespace"], set()).add(doc["spec"]["symbol"])
    assert by_namespace[TRADING] == {"SPY", "QQQ", "ES"}
    assert len(by_namespace["trading-demo"]) == 12
    assert len(symbols) == 15


def test_without_recursion_the_example_would_be_missed():
    flat = [a for a in APPLY if a != "-R"]
    assert len([d for d in applied(flat) if d["kind"] == "TradingSymbol"]) == 3


def test_nothing_is_declared_twice_and_every_namespace_exists_before_its_objects():
    created = {TRADING}  # the Pulumi program creates the trading namespace
    seen = set()
    for doc in applied(APPLY):
        if doc["kind"] == "Namespace":
            created.add(doc["metadata"]["name"])
            continue
        key = (doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)
        assert doc["metadata"]["namespace"] in created, key


def test_the_smoke_check_waits_for_every_applied_namespace():
    (wait,) = [run for run in RUNS if "kubectl wait" in run]
    assert "--all-namespaces" in wait
