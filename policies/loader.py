"""Load policy files into a `PolicySet`, collecting every problem with its file and field."""

from __future__ import annotations

import functools
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import yaml
from pydantic import ValidationError

from policies.models import (
    API_VERSION,
    KINDS,
    NAME_PATTERN,
    AdmissionPolicySpec,
    AnalysisPolicySpec,
    CostPolicySpec,
    PolicyModel,
    RecoveryPolicy,
    RiskPolicySpec,
    SLOPolicySpec,
    TuningPolicySpec,
)
from policies.templates import template_errors
from policies.tunables import parameter_errors

DEFAULTS_DIR = pathlib.Path(__file__).parent / "defaults"
"""The policies shipped with tradeops (the operator's embedded default)."""

M = TypeVar("M", bound=PolicyModel)


@dataclass(frozen=True)
class PolicyError:
    """One problem: where (file, document, field) and what."""

    file: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: {self.message}"


class PolicyLoadError(ValueError):
    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass
class PolicySet:
    """Policies by kind and name."""

    slo: dict[str, SLOPolicySpec] = field(default_factory=dict)
    analysis: dict[str, AnalysisPolicySpec] = field(default_factory=dict)
    tuning: dict[str, TuningPolicySpec] = field(default_factory=dict)
    risk: dict[str, RiskPolicySpec] = field(default_factory=dict)
    admission: dict[str, AdmissionPolicySpec] = field(default_factory=dict)
    recovery: dict[str, RecoveryPolicy] = field(default_factory=dict)
    cost: dict[str, CostPolicySpec] = field(default_factory=dict)

    def by_kind(self, kind: str) -> dict[str, Any]:
        return cast(dict[str, Any], getattr(self, _ATTRIBUTES[kind]))

    def get(self, kind: type[M], name: str) -> M:
        """The named policy of a kind, or a KeyError naming what exists."""
        kind_name = next(k for k, model in KINDS.items() if model is kind)
        found = self.by_kind(kind_name)
        if name not in found:
            raise KeyError(f"no {kind_name} named {name!r} (have: {', '.join(sorted(found)) or 'none'})")
        return cast(M, found[name])


_ATTRIBUTES = {"SLOPolicy": "slo", "AnalysisPolicy": "analysis", "TuningPolicy": "tuning", "RiskPolicy": "risk",
               "AdmissionPolicy": "admission", "RecoveryPolicy": "recovery", "CostPolicy": "cost"}


def _location(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _document_errors(doc: Any, where: str) -> tuple[str | None, str | None, PolicyModel | None, list[str]]:
    """(kind, name, model, [location: message]) of one YAML document."""
    if not isinstance(doc, dict):
        return None, None, None, [f"{where}: a policy document must be a mapping, got {type(doc).__name__}"]
    problems: list[str] = []
    if doc.get("apiVersion") != API_VERSION:
        problems.append(f"{where}.apiVersion: must be {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    kind = doc.get("kind")
    if kind not in KINDS:
        problems.append(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        return None, None, None, problems
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        problems.append(f"{where}.metadata.name: must match {NAME_PATTERN}, got {name!r}")
        name = None
    unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        problems.append(f"{where}: unknown top-level fields: {', '.join(sorted(unknown))}")
    try:
        spec = doc.get("spec")
        model = KINDS[kind].model_validate({} if spec is None else spec)
    except ValidationError as error:
        for problem in error.errors():
            problems.append(f"{where}.{_location(problem['loc'])}: {problem['msg']}")
        return kind, name, None, problems
    problems.extend(f"{where}.{p}" for p in _semantic_errors(model))
    return kind, name, model, problems


def _semantic_errors(model: PolicyModel) -> list[str]:
    """What a schema cannot say: PromQL templates render, tunable paths exist in the runtime config."""
    problems: list[str] = []
    if isinstance(model, SLOPolicySpec):
        for i, slo in enumerate(model.slos):
            if slo.sli is not None:
                problems += [f"spec.slos[{i}].sli.{p}" for p in template_errors(slo.sli.error_query, "errorQuery")]
                problems += [f"spec.slos[{i}].sli.{p}" for p in template_errors(slo.sli.total_query, "totalQuery")]
            if slo.analysis is not None:
                for field, template in slo.analysis.templates().items():
                    problems += [f"spec.slos[{i}].analysis.{p}" for p in template_errors(template, field)]
    if isinstance(model, TuningPolicySpec):
        problems += [f"spec.objective.{p}" for p in template_errors(model.objective.query, "query")]
        for i, parameter in enumerate(model.parameters):
            problems += [f"spec.parameters[{i}].{p}" for p in parameter_errors(parameter)]
    return problems


def load_texts(files: dict[str, str]) -> tuple[PolicySet, list[PolicyError]]:
    """Parse and validate policy documents given as {file name: YAML text}."""
    policies = PolicySet()
    errors: list[PolicyError] = []
    seen: dict[tuple[str, str], str] = {}
    for file, text in sorted(files.items()):
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as error:
            errors.append(PolicyError(file, "yaml", str(error).replace("\n", " ")))
            continue
        for index, doc in enumerate(docs):
            where = f"document {index + 1}"
            # One document per file: locations start at the field; several: they name the document too.
            prefix = "" if len(docs) == 1 else f"{where}."
            kind, name, model, problems = _document_errors(doc, where)
            for problem in problems:
                location, _, message = problem.partition(": ")
                location = location.removeprefix(f"{where}.")
                errors.append(PolicyError(file, where if location == where else prefix + location, message))
            # A document with any problem is reported, never used.
            if kind is None or name is None or model is None or problems:
                continue
            if (kind, name) in seen:
                duplicate = f"{kind} {name!r} is also defined in {seen[kind, name]}"
                errors.append(PolicyError(file, f"{prefix}metadata.name", duplicate))
                continue
            seen[kind, name] = file
            policies.by_kind(kind)[name] = model
    return policies, errors


def read_dir(directory: pathlib.Path) -> dict[str, str]:
    """The YAML files of a directory (recursively), by path."""
    if not directory.is_dir():
        raise FileNotFoundError(f"policy directory {directory} does not exist")
    return {str(p): p.read_text() for p in sorted(directory.rglob("*.y*ml"))}


@functools.cache
def default_policies() -> PolicySet:
    """The shipped policies (loaded once)."""
    return load_dir(DEFAULTS_DIR)


def load_dir(directory: pathlib.Path = DEFAULTS_DIR) -> PolicySet:
    """Load a policy directory; any problem raises PolicyLoadError listing all of them."""
    policies, errors = load_texts(read_dir(directory))
    if errors:
        raise PolicyLoadError(errors)
    return policies


def load_layered(directory: pathlib.Path) -> PolicySet:
    """The shipped defaults with a directory's policies on top (same kind and name: the directory's wins)."""
    merged = load_dir(DEFAULTS_DIR)
    override = load_dir(directory)
    for kind in KINDS:
        merged.by_kind(kind).update(override.by_kind(kind))
    return merged
