"""opsctl policy lint/check and the pure parts of opsctl slo report: exit codes, output, budget arithmetic."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
from typer.testing import CliRunner

from opsctl.main import app
from policies.admission import symbol_conflicts
from policies.budgets import BudgetRow, budget_remaining, burn_rate, rows
from policies.loader import load_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
SLOS = {slo.name: slo for slo in load_dir().slo["default"].slos}
runner = CliRunner()

BAD_RISK = "apiVersion: policies.tradeops.io/v1alpha1\nkind: RiskPolicy\nmetadata: {name: default}\n" \
           "spec: {maxDrawdown: 3, maxCapitl: 1}\n"


def test_lint_of_the_shipped_policies_is_clean():
    result = runner.invoke(app, ["policy", "lint"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_lint_prints_every_problem_with_file_and_field_and_exits_6(tmp_path: pathlib.Path):
    (tmp_path / "risk.yaml").write_text(BAD_RISK)
    result = runner.invoke(app, ["policy", "lint", str(tmp_path)])
    assert result.exit_code == 6
    assert result.stdout.splitlines() == [
        f"{tmp_path}/risk.yaml: spec.maxDrawdown: Input should be less than or equal to 1",
        f"{tmp_path}/risk.yaml: spec.maxCapitl: Extra inputs are not permitted",
    ]
    assert result.stderr == f"opsctl: error: 2 problems in {tmp_path}\n"


@pytest.mark.parametrize("args", [["-o", "json", "policy", "lint"], ["policy", "lint", "-o", "json"]],
                         ids=["global-option", "command-option"])
def test_lint_json_lists_problems(tmp_path: pathlib.Path, args: list[str]):
    (tmp_path / "risk.yaml").write_text(BAD_RISK)
    result = runner.invoke(app, [*args, str(tmp_path)])
    assert result.exit_code == 6
    assert json.loads(result.stdout)[1] == {"file": f"{tmp_path}/risk.yaml", "location": "spec.maxCapitl",
                                            "message": "Extra inputs are not permitted"}


def test_check_passes_the_examples_and_rejects_a_bad_manifest(tmp_path: pathlib.Path):
    assert runner.invoke(app, ["policy", "check", *EXAMPLES]).exit_code == 0
    bad = tmp_path / "spy.yaml"
    bad.write_text((ROOT / "examples/spy.yaml").read_text().replace("ghcr.io/tradeops/", "docker.io/someone/"))
    result = runner.invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 6
    assert result.stdout == (f"{bad}: spy: spec.image: docker.io/someone/trading-runtime:0.1.0 is not from an "
                             "allowed registry (ghcr.io/tradeops/)\n")


def test_check_with_broken_policies_reports_the_policies(tmp_path: pathlib.Path):
    (tmp_path / "risk.yaml").write_text(BAD_RISK)
    result = runner.invoke(app, ["policy", "check", "--policies", str(tmp_path), *EXAMPLES])
    assert result.exit_code == 6
    assert "spec.maxCapitl" in result.stdout


def test_slo_report_unreachable_prometheus_exits_4():
    result = runner.invoke(app, ["slo", "report", "--prometheus-url", "http://127.0.0.1:9"])
    assert result.exit_code == 4
    assert result.stderr == ("opsctl: error: Prometheus at http://127.0.0.1:9 is unreachable (connection refused): "
                             "set TRADEOPS_PROMETHEUS_URL or pass --prometheus-url\n")
    from_environment = runner.invoke(app, ["slo", "report"], env={"TRADEOPS_PROMETHEUS_URL": "http://127.0.0.1:9"})
    assert from_environment.stderr == result.stderr


def test_slo_report_rejects_a_bad_window_and_unknown_policy(tmp_path: pathlib.Path):
    assert runner.invoke(app, ["slo", "report", "--window", "a week"]).exit_code == 2
    result = runner.invoke(app, ["slo", "report", "--policy", "strict"])
    assert result.exit_code == 3
    assert result.stderr.startswith("opsctl: error: no SLOPolicy named 'strict'")
    (tmp_path / "risk.yaml").write_text(BAD_RISK)
    assert runner.invoke(app, ["slo", "report", "--policies", str(tmp_path)]).exit_code == 6


@pytest.mark.parametrize(("ratio", "remaining", "rate"), [
    (0.0, 1.0, 0.0), (0.005, 0.5, 0.5), (0.01, 0.0, 1.0), (0.02, -1.0, 2.0), (math.nan, None, None), (None, None, None),
], ids=["untouched", "half", "spent", "overspent", "no-events", "absent"])
def test_budget_arithmetic(ratio: float | None, remaining: float | None, rate: float | None):
    slo = SLOS["error-ratio"]  # objective 99 %: budget 1 %
    assert budget_remaining(ratio, slo) == pytest.approx(remaining)
    assert burn_rate(ratio, slo) == pytest.approx(rate)


def test_rows_per_symbol_with_the_hours_burn_rate():
    slo = SLOS["tick-to-signal-latency"]  # objective 95 %: budget 5 %
    got = rows(slo, "30d", {("t", "SPY"): 0.01, ("", "QQQ"): 0.0}, {("t", "SPY"): 0.1})
    assert got[0] == BudgetRow("", "QQQ", slo.name, 0.95, "30d", 0.0, 1.0, None)
    assert got[1].as_dict() == {"namespace": "t", "symbol": "SPY", "slo": slo.name, "objective": 0.95, "window": "30d",
                                "errorRatio": 0.01, "budgetRemaining": pytest.approx(0.8),
                                "burnRate1h": pytest.approx(2.0)}


def test_check_reports_unreadable_files_and_manifests_without_a_name(tmp_path: pathlib.Path):
    odd = tmp_path / "odd.yaml"
    odd.write_text("kind: TradingSymbol\napiVersion: trading.tradeops.io/v1alpha1\nmetadata: spy\nspec: {}\n")
    result = runner.invoke(app, ["policy", "check", str(tmp_path / "missing.yaml"), str(odd)])
    assert result.exit_code == 6
    assert result.stdout.splitlines()[0] == f"{tmp_path}/missing.yaml: file: No such file or directory"
    assert f"{odd}: document 1: spec.image: required" in result.stdout.splitlines()


def test_unexpected_errors_are_one_line_with_exit_1(monkeypatch: pytest.MonkeyPatch):
    def broken(*_: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr("opsctl.slo_cli.measure", broken)
    result = runner.invoke(app, ["slo", "report"])
    assert (result.exit_code, result.stderr) == \
        (1, "opsctl: error: unexpected ValueError: boom (OPSCTL_DEBUG=1 shows where)\n")


def test_check_refuses_two_manifests_claiming_one_symbol_in_one_namespace(tmp_path: pathlib.Path):
    """One symbol, one trader: `SPY` named by a second TradingSymbol in the namespace is refused, with the owner;
    the same symbol in another namespace, and the same object listed twice, are not conflicts."""
    spy = (ROOT / "deploy" / "symbols" / "spy.yaml").read_text()
    second = tmp_path / "spy-2.yaml"
    second.write_text(spy.replace("name: spy\n", "name: spy-2\n", 1))
    elsewhere = tmp_path / "spy-demo.yaml"
    elsewhere.write_text(spy.replace("namespace: trading\n", "namespace: trading-demo\n", 1))
    files = [str(ROOT / "deploy" / "symbols" / "spy.yaml"), str(second)]
    result = runner.invoke(app, ["policy", "check", *files])
    assert result.exit_code == 6, result.output
    assert result.stdout.splitlines() == [
        f"{second}: spy-2: spec.symbol: SPY in namespace trading is already claimed by spy ({files[0]}): one symbol "
        "has one trader (the operator would refuse this one with a Conflict)"]
    assert result.stderr == "opsctl: error: 1 problem in 2 manifest files\n"
    assert runner.invoke(app, ["policy", "check", files[0], str(elsewhere), files[0]]).exit_code == 0
    shipped = [*sorted(str(p) for p in (ROOT / "deploy" / "symbols").glob("*.yaml")),
               str(ROOT / "deploy" / "symbols" / "examples" / "twelve-symbols.yaml")]  # what CI checks
    assert runner.invoke(app, ["policy", "check", *shipped]).exit_code == 0


@pytest.mark.parametrize(("manifests", "expected"), [
    ([("a", "ns", "SPY"), ("b", "ns", "SPY")], [("b", "a", "ns", "SPY")]),
    ([("a", "ns", "SPY"), ("b", "ns", "spy")], [("b", "a", "ns", "SPY")]),
    ([("a", "ns", "SPY"), ("b", "other", "SPY")], []),
    ([("a", None, "SPY"), ("b", "default", "SPY")], [("b", "a", "default", "SPY")]),
    ([("a", "ns", "SPY"), ("a", "ns", "SPY")], []),
    ([("a", "ns", "SPY"), ("b", "ns", "QQQ"), ("c", "ns", "SPY"), ("d", "ns", "SPY")],
     [("c", "a", "ns", "SPY"), ("d", "a", "ns", "SPY")]),
], ids=["same-symbol", "case-normalised", "other-namespace", "default-namespace", "same-object-twice", "first-wins"])
def test_symbol_conflicts_between_manifests(manifests, expected):
    docs = [(name, {"kind": "TradingSymbol", "metadata": {"name": name, **({"namespace": ns} if ns else {})},
                    "spec": {"symbol": symbol}}) for name, ns, symbol in manifests]
    found = [(c.claimant, c.owner, c.namespace, c.symbol) for c in symbol_conflicts(docs)]
    assert found == expected
