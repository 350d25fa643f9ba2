"""Whole-directory checks: every problem of a policy directory, and of TradingSymbol manifests against it."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import yaml

from policies.admission import manifest_errors, symbol_conflicts
from policies.loader import PolicyError, PolicySet, load_texts, read_dir


def _load(directory: pathlib.Path) -> tuple[PolicySet, list[PolicyError]]:
    if not directory.is_dir():
        return PolicySet(), [PolicyError(str(directory), "directory", "does not exist")]
    return load_texts(read_dir(directory))


def lint(directory: pathlib.Path) -> list[PolicyError]:
    """Every problem of the policy files in a directory."""
    return _load(directory)[1]


def _documents(file: pathlib.Path) -> tuple[list[Any], PolicyError | None]:
    try:
        text = file.read_text()
    except OSError as error:
        return [], PolicyError(str(file), "file", error.strerror or str(error))
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None], None
    except yaml.YAMLError as error:
        return [], PolicyError(str(file), "yaml", str(error).replace("\n", " "))


def check_manifests(files: Sequence[pathlib.Path], directory: pathlib.Path, admission: str) -> list[PolicyError]:
    """Every admission problem of the TradingSymbols in the manifest files (policy errors instead, if any), and
    every later claimant of a symbol an earlier manifest names in the same namespace. Locations are
    `NAME: field`, NAME the manifest's metadata.name."""
    policies, problems = _load(directory)
    if problems:
        return problems
    claimants: list[tuple[tuple[str, str], Any]] = []
    for file in files:
        documents, unreadable = _documents(file)
        problems += [unreadable] if unreadable else []
        for index, doc in enumerate(documents):
            if not isinstance(doc, dict):
                problems.append(PolicyError(str(file), f"document {index + 1}", "not a mapping"))
                continue
            metadata = doc.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            for problem in manifest_errors(doc, policies, admission):
                location, _, message = problem.partition(": ")
                problems.append(PolicyError(str(file), f"{name or f'document {index + 1}'}: {location}", message))
            claimants.append(((str(file), name or f"document {index + 1}"), doc))
    for conflict in symbol_conflicts(claimants):
        (where, name), (owner_file, owner) = conflict.claimant, conflict.owner
        problems.append(PolicyError(where, f"{name}: spec.symbol", conflict.message(f"{owner} ({owner_file})")))
    return problems
