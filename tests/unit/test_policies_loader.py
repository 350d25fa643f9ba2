"""Policy files: the defaults load clean; every kind of invalid file is reported with its file and field,
all problems at once; the loader never raises on any input."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from policies.__main__ import main
from policies.loader import DEFAULTS_DIR, PolicyError, PolicyLoadError, load_dir, load_texts, read_dir

HEADER = "apiVersion: policies.tradeops.io/v1alpha1\n"
SLI = """      sli:
        errorQuery: rate(bad{ {{ selector }} }[{{ window }}])
        totalQuery: rate(all{ {{ selector }} }[{{ window }}])
"""


def slo_doc(body: str, name: str = "default") -> str:
    return f"{HEADER}kind: SLOPolicy\nmetadata: {{name: {name}}}\nspec:\n  slos:\n{body}"


def one_slo(extra: str = "", sli: str = SLI, objective: str = "0.99") -> str:
    return slo_doc(f"    - name: errors\n      objective: {objective}\n      runbookUrl: https://r.example/x\n"
                   f"{extra}{sli}")


def tuning_doc(path: str) -> str:
    return (f"{HEADER}kind: TuningPolicy\nmetadata: {{name: t}}\nspec:\n"
            "  objective: {query: 'avg(x{ {{ selector }} })', direction: maximize}\n"
            f"  parameters:\n    - {{path: {path}, min: 0.4, max: 0.9, step: 0.1, minStep: 0.05}}\n")


def test_defaults_load_clean():
    policies, errors = load_texts(read_dir(DEFAULTS_DIR))
    assert errors == []
    assert set(policies.slo) == set(policies.analysis) == set(policies.risk) == set(policies.admission) == {"default"}
    assert set(policies.tuning) == {"default", "hit-rate"}


INVALID = [
    ("bad-yaml", "spec: [1\n", "yaml", "expected ',' or ']'"),
    ("not-a-mapping", "- 1\n", "document 1", "a policy document must be a mapping, got list"),
    ("api-version", "apiVersion: v1\nkind: RiskPolicy\nmetadata: {name: r}\n", "apiVersion",
     "must be 'policies.tradeops.io/v1alpha1', got 'v1'"),
    ("unknown-kind", f"{HEADER}kind: SloPolicy\nmetadata: {{name: x}}\n", "kind",
     "must be one of SLOPolicy, AnalysisPolicy, TuningPolicy, RiskPolicy, AdmissionPolicy, RecoveryPolicy, CostPolicy, "
     "got 'SloPolicy'"),
    ("bad-name", f"{HEADER}kind: RiskPolicy\nmetadata: {{name: Default}}\n", "metadata.name",
     "must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, got 'Default'"),
    ("metadata-not-a-mapping", f"{HEADER}kind: RiskPolicy\nmetadata: default\n", "metadata.name",
     "must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, got None"),
    ("top-level-typo", f"{HEADER}kind: RiskPolicy\nmetadata: {{name: r}}\nspecs: {{}}\n", "document 1",
     "unknown top-level fields: specs"),
    ("spec-not-a-mapping", f"{HEADER}kind: RiskPolicy\nmetadata: {{name: r}}\nspec: []\n", "spec",
     "Input should be a valid dictionary or instance of RiskPolicySpec"),
    ("field-typo", f"{HEADER}kind: RiskPolicy\nmetadata: {{name: r}}\nspec: {{maxCapitl: 1}}\n", "spec.maxCapitl",
     "Extra inputs are not permitted"),
    ("objective-out-of-range", one_slo(objective="1.5"), "spec.slos[0].objective",
     "Input should be less than 1"),
    ("threshold-not-a-number", slo_doc("    - name: lat\n      objective: 0.9\n      runbookUrl: https://r.example/\n"
                                       "      analysis: {query: 'x{ {{ selector }} }', passes: below, threshold: "
                                       "fast}\n"),
     "spec.slos[0].analysis.threshold", "Input should be a valid number"),
    ("bad-comparison", slo_doc("    - name: lat\n      objective: 0.9\n      runbookUrl: https://r.example/\n"
                               "      analysis: {query: 'x{ {{ selector }} }', passes: under, threshold: 1}\n"),
     "spec.slos[0].analysis.passes", "Input should be 'below' or 'above'"),
    ("unmeasured-slo", slo_doc("    - name: lat\n      objective: 0.9\n      runbookUrl: https://r.example/\n"),
     "spec.slos[0]", "an SLO needs an sli (for alerts), an analysis metric, or both"),
    ("runbook-not-a-url", one_slo().replace("https://r.example/x", "docs/runbooks.md"), "spec.slos[0].runbookUrl",
     "String should match pattern"),
    ("duplicate-slo", slo_doc("    - {name: a, objective: 0.9, runbookUrl: 'https://r/', analysis: "
                              "{query: 'x{ {{ selector }} }', samples: 'n{ {{ selector }} }', passes: below, "
                              "threshold: 1}}\n" * 2),
     "spec", "duplicate SLO names: a"),
    ("template-without-selector", one_slo(sli="      sli: {errorQuery: 'rate(bad[{{ window }}])', "
                                              "totalQuery: 'rate(all{ {{ selector }} }[{{ window }}])'}\n"),
     "spec.slos[0].sli.errorQuery", "template must use {{ selector }}"),
    ("template-syntax", one_slo(sli="      sli: {errorQuery: 'rate(bad{ {{ selector }[5m])', "
                                    "totalQuery: 'rate(all{ {{ selector }} }[{{ window }}])'}\n"),
     "spec.slos[0].sli.errorQuery", "template does not render"),
    ("template-unbalanced", one_slo(sli="      sli: {errorQuery: 'rate(bad{ {{ selector }} }[{{ window }}]', "
                                        "totalQuery: 'rate(all{ {{ selector }} }[{{ window }}])'}\n"),
     "spec.slos[0].sli.errorQuery", "unbalanced brackets"),
    ("template-unknown-variable", one_slo(sli="      sli: {errorQuery: 'rate(bad{ {{ selector }} }[{{ range }}])', "
                                              "totalQuery: 'rate(all{ {{ selector }} }[{{ window }}])'}\n"),
     "spec.slos[0].sli.errorQuery", "template does not render: 'range' is undefined"),
    ("tunable-not-in-runtime", tuning_doc("strategy.entryScor"), "spec.parameters[0].path",
     "the runtime config has no field strategy.entryScor"),
    ("tunable-risk-limit", tuning_doc("risk.maxDrawdown"), "spec.parameters[0].path",
     "risk.maxDrawdown is a risk limit; risk limits are not tunable"),
    ("tunable-beyond-runtime-bounds", tuning_doc("strategy.entryScore").replace("max: 0.9", "max: 1.5"),
     "spec.parameters[0].max", "1.5 is above the runtime's upper bound 1.0"),
    ("tunable-min-above-max", tuning_doc("strategy.entryScore").replace("min: 0.4", "min: 0.95"),
     "spec.parameters[0]", "min (0.95) must be below max (0.9)"),
]


@pytest.mark.parametrize(("text", "location", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_files_are_reported_with_file_and_field(text: str, location: str, message: str):
    policies, errors = load_texts({"policies/bad.yaml": text})
    assert [(e.file, e.location) for e in errors] == [("policies/bad.yaml", location)], errors
    assert message in errors[0].message
    assert not any(policies.by_kind(kind) for kind in ("SLOPolicy", "TuningPolicy", "RiskPolicy"))


def test_duplicate_policy_names_across_files_name_both_files():
    risk = f"{HEADER}kind: RiskPolicy\nmetadata: {{name: default}}\n"
    policies, errors = load_texts({"a.yaml": risk, "b.yaml": risk})
    assert errors == [PolicyError("b.yaml", "metadata.name", "RiskPolicy 'default' is also defined in a.yaml")]
    assert list(policies.risk) == ["default"]


def test_every_problem_of_every_file_is_reported_at_once():
    bad_risk = f"{HEADER}kind: RiskPolicy\nmetadata: {{name: r}}\nspec: {{maxDrawdown: 2, maxCapital: -1}}\n"
    _, errors = load_texts({"one.yaml": bad_risk + "---\n" + one_slo(objective="0"), "two.yaml": "a: [\n"})
    assert [(e.file, e.location) for e in errors] == [
        ("one.yaml", "document 1.spec.maxCapital"), ("one.yaml", "document 1.spec.maxDrawdown"),
        ("one.yaml", "document 2.spec.slos[0].objective"), ("two.yaml", "yaml")]


def test_load_dir_raises_with_all_errors(tmp_path: pathlib.Path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "x.yml").write_text(tuning_doc("risk.capital"))
    with pytest.raises(PolicyLoadError) as raised:
        load_dir(tmp_path)
    assert [str(e) for e in raised.value.errors] == [
        f"{tmp_path}/nested/x.yml: spec.parameters[0].path: risk.capital is a risk limit; risk limits are not tunable"]


def test_lint_cli(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]):
    assert main(["lint"]) == 0
    (tmp_path / "slo.yaml").write_text(one_slo(objective="2"))
    assert main(["lint", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path}/slo.yaml: spec.slos[0].objective: Input should be less")
    assert main(["lint", str(tmp_path / "missing")]) == 1


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


@given(kind=st.sampled_from(["SLOPolicy", "AnalysisPolicy", "TuningPolicy", "RiskPolicy", "AdmissionPolicy", "X"]),
       metadata=json_values, spec=json_values)
def test_any_document_yields_a_policy_or_errors_never_an_exception(kind: str, metadata: object, spec: object):
    text = yaml.safe_dump({"apiVersion": "policies.tradeops.io/v1alpha1", "kind": kind, "metadata": metadata,
                           "spec": spec})
    policies, errors = load_texts({"f.yaml": text})
    loaded = sum(len(policies.by_kind(k)) for k in ("SLOPolicy", "AnalysisPolicy", "TuningPolicy", "RiskPolicy",
                                                    "AdmissionPolicy"))
    assert (loaded == 1) != bool(errors)
    assert all(e.file == "f.yaml" and e.location and e.message for e in errors)


@given(objective=st.floats(allow_nan=False, allow_infinity=False))
def test_objectives_load_exactly_when_strictly_between_0_and_1(objective: float):
    _, errors = load_texts({"s.yaml": one_slo(objective=repr(objective))})
    assert (errors == []) == (0 < objective < 1)


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ("{query: 'x{ {{ selector }} }', passes: below, threshold: 1}", "a value metric (query) needs samples"),
        ("{passes: below, threshold: 1}", "exactly one of ratio (events/trials), query (a value) or paired"),
        ("{paired: {}, query: 'x{ {{ selector }} }', samples: 'n{ {{ selector }} }', passes: below, threshold: 1}",
         "exactly one of ratio (events/trials), query (a value) or paired"),
        ("{ratio: {events: 'e{ {{ selector }} }', trials: 't{ {{ selector }} }'}, samples: 'n{ {{ selector }} }', "
         "passes: below, threshold: 1}", "a ratio's trials are its samples"),
        ("{ratio: {events: 'e{ {{ selector }} }', trials: 't'}, passes: below, threshold: 1}",
         "template must use {{ selector }}"),
    ],
    ids=["value-without-samples", "neither-kind", "paired-and-value", "ratio-with-samples", "trials-unscoped"],
)
def test_every_analysis_metric_declares_how_many_samples_it_was_judged_on(analysis: str, message: str):
    text = slo_doc(f"    - {{name: a, objective: 0.9, runbookUrl: 'https://r/', analysis: {analysis}}}\n")
    _, errors = load_texts({"policies/slo.yaml": text})
    assert any(message in e.message and e.location.startswith("spec.slos[0]") for e in errors), errors
