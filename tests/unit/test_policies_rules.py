"""Rules rendered from SLO policies: checked in, both forms hold the same groups, and every SLO with an SLI
gets its ratios, budgets and four burn-rate alerts with a runbook."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from policies.__main__ import main
from policies.loader import load_dir
from policies.models import SLO, ErrorRatioSLI, SLOPolicySpec
from policies.rule_set import rule_groups
from policies.rules import (
    ALERT_NAME,
    MANIFEST_NAME,
    PERIOD_INTERVAL,
    RULE_WINDOWS,
    error_ratio_query,
    groups,
    number,
    render_rules,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT = load_dir().slo["default"]


def test_checked_in_rules_match_the_default_policy():
    assert (ROOT / "deploy/prometheus/rules.yml").read_text() == render_rules(rule_groups(DEFAULT)), (
        "deploy/prometheus/rules.yml is stale: run `make rules`")
    manifest = render_rules(rule_groups(DEFAULT), "prometheusrule", "tradeops-system")
    assert (ROOT / "deploy/prometheus/tradeops-rules.yaml").read_text() == manifest, (
        "deploy/prometheus/tradeops-rules.yaml is stale: run `make rules`")


def test_prometheusrule_wraps_the_same_groups():
    plain = yaml.safe_load(render_rules(groups(DEFAULT)))
    manifest = yaml.safe_load(render_rules(groups(DEFAULT), "prometheusrule"))
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == MANIFEST_NAME
    assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert "namespace" not in manifest["metadata"]
    assert manifest["spec"] == plain


def test_every_sli_gets_ratios_budgets_and_four_alerts_with_runbooks():
    rendered = yaml.safe_load(render_rules(groups(DEFAULT)))
    with_sli = [slo for slo in DEFAULT.slos if slo.sli is not None]
    assert [g["name"] for g in rendered["groups"]] == [f"tradeops-slo-{slo.name}" for slo in with_sli] + [
        f"tradeops-slo-{slo.name}-period" for slo in with_sli]
    for group, period, slo in zip(rendered["groups"], rendered["groups"][len(with_sli):], with_sli, strict=False):
        records = [r["record"] for r in group["rules"] if "record" in r]
        assert records == [f"slo:sli_error:ratio_rate{w}" for w in RULE_WINDOWS] + [
            "slo:objective:ratio", "slo:error_budget:ratio"]
        assert period["interval"] == PERIOD_INTERVAL
        assert [r["record"] for r in period["rules"]] == ["slo:sli_error:ratio_rate30d",
                                                          "slo:error_budget_remaining:ratio"]
        alerts = [r for r in group["rules"] if "alert" in r]
        assert [(a["labels"]["burn_rate"], a["labels"]["long"], a["labels"]["short"]) for a in alerts] == [
            ("14.4", "1h", "5m"), ("6", "6h", "30m"), ("3", "1d", "2h"), ("1", "3d", "6h")]
        assert [a["labels"]["severity"] for a in alerts] == [slo.severity, slo.severity, "ticket", "ticket"]
        for alert in alerts:
            assert alert["alert"] == ALERT_NAME
            assert alert["labels"]["slo"] == slo.name
            assert alert["annotations"]["runbook_url"] == slo.runbook_url
            assert "$value" in alert["annotations"]["description"]
            assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}


def _slo(**changes: object) -> SLO:
    base = {"name": "errors", "objective": 0.999, "runbook_url": "https://runbooks.example/errors",
            "sli": ErrorRatioSLI(error_query="rate(bad{ {{ selector }} }[{{ window }}])",
                                 total_query="rate(all{ {{ selector }} }[{{ window }}])")}
    return SLO(**{**base, **changes})


def test_analysis_only_slos_get_no_rules():
    spec = SLOPolicySpec(slos=[_slo(), _slo(name="hits", sli=None, analysis={
        "ratio": {"events": "sum(hit{ {{ selector }} })", "trials": "sum(call{ {{ selector }} })"},
        "passes": "above", "threshold": 0.5})])
    assert [g["name"] for g in groups(spec)] == ["tradeops-slo-errors", "tradeops-slo-errors-period"]


@pytest.mark.parametrize(("severity", "expected"), [("page", ["page", "page", "ticket", "ticket"]),
                                                    ("ticket", ["ticket"] * 4)], ids=["page", "ticket"])
def test_fast_burns_page_with_the_slo_severity(severity: str, expected: list[str]):
    rules = groups(SLOPolicySpec(slos=[_slo(severity=severity)]))[0]["rules"]
    assert [r["labels"]["severity"] for r in rules if "alert" in r] == expected


def test_budget_numbers_are_exact_and_the_selector_is_configurable():
    slo_group, period_group = groups(SLOPolicySpec(slos=[_slo(period="28d")]), selector='job="runtime"')
    rules = slo_group["rules"] + period_group["rules"]
    by_record = {r["record"]: r["expr"] for r in rules if "record" in r}
    assert by_record["slo:error_budget:ratio"] == "vector(0.001)"
    assert by_record["slo:sli_error:ratio_rate28d"] == 'avg_over_time(slo:sli_error:ratio_rate5m{slo="errors"}[28d])'
    assert by_record["slo:error_budget_remaining:ratio"] == '1 - slo:sli_error:ratio_rate28d{slo="errors"} / 0.001'
    assert 'bad{ job="runtime" }[1h]' in by_record["slo:sli_error:ratio_rate1h"]


def test_error_ratio_counts_a_symbol_without_error_series_as_zero():
    query = error_ratio_query(_slo().sli, 'symbol="SPY"', "5m")  # type: ignore[arg-type]
    assert query == ('(sum by (namespace, symbol) (rate(bad{ symbol="SPY" }[5m])) or 0 * '
                     'sum by (namespace, symbol) (rate(all{ symbol="SPY" }[5m])))\n/\n'
                     '(sum by (namespace, symbol) (rate(all{ symbol="SPY" }[5m])) > 0)')


@pytest.mark.parametrize(("value", "text"), [(1 - 0.99, "0.01"), (14.4, "14.4"), (6.0, "6"), (0.9995, "0.9995")])
def test_numbers_render_as_written(value: float, text: str):
    assert number(value) == text


def test_cli_writes_both_forms_and_refuses_an_unknown_policy(tmp_path: pathlib.Path):
    out = tmp_path / "rule.yaml"
    assert main(["rules", "--prometheusrule", "--namespace", "monitoring", "-o", str(out)]) == 0
    assert out.read_text() == render_rules(rule_groups(DEFAULT), "prometheusrule", "monitoring")
    assert yaml.safe_load(out.read_text())["metadata"]["namespace"] == "monitoring"
    assert main(["rules", "--policy", "strict"]) == 1


def test_a_period_among_the_windows_reuses_its_exact_ratio():
    rules = [rule for group in groups(SLOPolicySpec(slos=[_slo(period="3d")])) for rule in group["rules"]]
    records = [r["record"] for r in rules if "record" in r]
    assert records.count("slo:sli_error:ratio_rate3d") == 1
    by_record = {r["record"]: r["expr"] for r in rules if "record" in r}
    assert "rate(bad{ symbol!=\"\" }[3d])" in by_record["slo:sli_error:ratio_rate3d"]
    assert by_record["slo:error_budget_remaining:ratio"] == '1 - slo:sli_error:ratio_rate3d{slo="errors"} / 0.001'

