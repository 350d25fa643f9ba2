"""Cost per symbol, the pure part: the CostPolicy refuses what cannot be priced, shared costs split by usage
(equally, and saying so, when nothing was measured), idle and other workloads are their own lines, a
service without data is no data; the checked-in cost rules are what the policy renders."""

from __future__ import annotations

import datetime
import pathlib

import pytest
from pydantic import ValidationError

from policies.cost_rules import COST_MANIFEST_NAME, cost_groups
from policies.loader import load_dir
from policies.models import CostPolicySpec, SplitBy
from policies.rules import render_rules
from reports.cost import CostInputs, S3Use, ServiceUse, compute, split
from reports.window import Window

ROOT = pathlib.Path(__file__).resolve().parents[2]
POLICY = load_dir().cost["default"]
GIB = 2**30
START = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
WINDOW = Window(START, START + datetime.timedelta(hours=10))
HOURS = [(START + datetime.timedelta(hours=h)).timestamp() for h in range(1, 11)]


def hourly(value: float) -> dict[float, float]:
    return dict.fromkeys(HOURS, value)


def inputs(**changes: object) -> CostInputs:
    base: dict[str, object] = {
        "symbol_cpu": {"SPY": hourly(1.0), "QQQ": hourly(0.5)},
        "symbol_memory": {"SPY": hourly(GIB), "QQQ": hourly(GIB)},
        "services": {"operator": ServiceUse(hourly(0.2), hourly(0.0), {})},
        "all_cpu": hourly(2.0), "all_memory": hourly(2 * GIB),
        "node_cpu": hourly(4.0), "node_memory": hourly(8 * GIB),
        "usage": {"operator": {"SPY": 3.0, "QQQ": 1.0}},
        "s3": None, "s3_usage": {},
    }
    return CostInputs(**{**base, **changes})  # type: ignore[arg-type]


def test_the_checked_in_cost_rules_are_current():
    assert (ROOT / "deploy/prometheus/cost-rules.yml").read_text() == render_rules(
        cost_groups(POLICY), generator="`python -m policies cost-rules` from the cost policy"), \
        "deploy/prometheus/cost-rules.yml is stale: run `make rules`"
    assert (ROOT / "deploy/prometheus/tradeops-cost-rules.yaml").read_text() == render_rules(
        cost_groups(POLICY), "prometheusrule", "tradeops-system", COST_MANIFEST_NAME,
        "`python -m policies cost-rules` from the cost policy")


@pytest.mark.parametrize(("change", "message"), [
    ({"region": "mars-1"}, "no price sheet"),
    ({"sharedServices": [{"name": "a", "namespace": "x", "podPattern": "a"},
                         {"name": "a", "namespace": "y", "podPattern": "b"}]}, "unique"),
    ({"budgetPerSymbol": 0}, "greater than 0"),
], ids=["unknown-region", "duplicate-service", "zero-budget"])
def test_cost_policy_refuses_what_cannot_be_priced(change, message):
    spec = {**POLICY.model_dump(by_alias=True), **change}
    with pytest.raises(ValidationError, match=message):
        CostPolicySpec.model_validate(spec)


def test_prices_budgets_and_projection():
    result = compute(inputs(), POLICY, WINDOW)
    spy = next(s for s in result.symbols if s.symbol == "SPY")
    cpu, memory = POLICY.prices.cpu_core_hour, POLICY.prices.memory_gib_hour
    operator = 0.2 * cpu * 10
    assert spy.cpu == pytest.approx(cpu * 10)
    assert spy.memory == pytest.approx(memory * 10)
    assert spy.shared == {"operator": pytest.approx(0.75 * operator)}
    assert spy.monthly == pytest.approx(spy.total * 730 / 10)
    assert spy.projection == pytest.approx(spy.total / 10 * 30 * 24)  # November
    assert result.services["prometheus"] is None, "no pods: no data, not 0"
    assert result.idle == pytest.approx(2.0 * cpu * 10 + 6 * memory * 10)
    assert result.other == pytest.approx(0.3 * cpu * 10)  # 2 cores allocated, 1.5 symbols', 0.2 the operator's


def test_an_unmeasured_split_is_equal_and_says_so():
    assert split({}, ["QQQ", "SPY"], SplitBy.ROWS_WRITTEN) == split({"SPY": 0.0}, ["QQQ", "SPY"], SplitBy.ROWS_WRITTEN)
    shares = split({}, ["QQQ", "SPY"], SplitBy.ROWS_WRITTEN)
    assert shares.shares == {"QQQ": 0.5, "SPY": 0.5}
    assert shares.method == "equal (no rowsWritten measured)"
    assert split({"SPY": 3.0, "QQQ": 1.0}, ["QQQ", "SPY"], SplitBy.EQUAL).method == "equal"


def test_s3_is_priced_and_split_by_rows_written():
    result = compute(inputs(s3=S3Use(bytes_stored=10 * GIB, put_requests=2000), s3_usage={"SPY": 1.0, "QQQ": 3.0}),
                     POLICY, WINDOW)
    expected = 10 * POLICY.prices.s3_storage_gib_month * 10 / 730 + 2 * POLICY.prices.s3_put_per_1000
    assert result.s3 == pytest.approx(expected)
    assert {s.symbol: s.s3 for s in result.symbols} == {"QQQ": pytest.approx(0.75 * expected),
                                                        "SPY": pytest.approx(0.25 * expected)}


def test_a_budget_of_its_own_decides_the_verdict():
    policy = POLICY.model_copy(update={"symbol_budgets": {"SPY": 1.0}})
    verdicts = {s.symbol: s.within_budget for s in compute(inputs(), policy, WINDOW).symbols}
    assert verdicts == {"SPY": False, "QQQ": True}
