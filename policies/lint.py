"""Whole-directory checks: every problem of a policy directory, and of TradingSymbol manifests against it."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import yaml

from policies.admission import manifest_errors
from policies.loader import PolicyError, load_texts, read_dir


def lint(directory: pathlib.Path) -> list[PolicyError]:
    """Every problem of the policy files in a directory."""
    if not directory.is_dir():
        return [PolicyError(str(directory), "directory", "does not exist")]
    return load_texts(read_dir(directory))[1]


def check_manifests(files: Sequence[pathlib.Path], directory: pathlib.Path, admission: str) -> list[PolicyError]:
    """Every admission problem of the TradingSymbols in the manifest files (policy errors first)."""
    problems = lint(directory)
    if problems:
        return problems
    policies = load_texts(read_dir(directory))[0]
    for file in files:
        try:
            documents = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except (OSError, yaml.YAMLError) as error:
            problems.append(PolicyError(str(file), "yaml", str(error).replace("\n", " ")))
            continue
        for index, doc in enumerate(documents):
            if not isinstance(doc, dict):
                problems.append(PolicyError(str(file), f"document {index + 1}", "not a mapping"))
                continue
            name = (doc.get("metadata") or {}).get("name", f"document {index + 1}")
            for problem in manifest_errors(doc, policies, admission):
                location, _, message = problem.partition(": ")
                problems.append(PolicyError(str(file), f"{name}: {location}", message))
    return problems
