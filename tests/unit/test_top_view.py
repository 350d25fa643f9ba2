"""The view model of `opsctl top`: lines from query results, "no data" (never 0) where Prometheus has
nothing, NaN and infinities as no data, revisions in numeric order, the hit rate against the baseline, and the
queries' guards."""

from __future__ import annotations

import math

import pytest

from opsctl.top_view import COLUMNS, NO_DATA, QUERIES, SymbolLine, cells, lines


def test_every_query_answers_per_namespace_and_symbol():
    for name, query in QUERIES.items():
        assert "by (namespace, symbol" in query, name


def test_ratios_never_divide_by_zero_and_count_no_error_series_as_zero():
    query = QUERIES["error_ratio"]
    assert "> 0)" in query.split(" / ")[-1]
    assert " or 0 * " in query
    assert 'stage="process"' in query


def test_lines_join_results_and_phases_by_namespace_and_symbol():
    results = {
        "revisions": [({"namespace": "a", "symbol": "SPY", "revision": "10"}, 1.0),
                      ({"namespace": "a", "symbol": "SPY", "revision": "9"}, 1.0)],
        "tick_rate": [({"namespace": "a", "symbol": "SPY"}, 150.0), ({"namespace": "b", "symbol": "SPY"}, 3.0)],
        "tick_to_signal_p95": [({"namespace": "a", "symbol": "SPY"}, math.nan)],
        "error_ratio": [({"namespace": "a", "symbol": "SPY"}, 0.0), ({"namespace": "a"}, 1.0)],
        "budget_left": [({"namespace": "a", "symbol": "SPY"}, -math.inf)],
    }
    got = lines(results, {("a", "SPY"): "Ready", ("a", "ES"): "Halted"})
    assert [(line.namespace, line.symbol) for line in got] == [("a", "ES"), ("a", "SPY"), ("b", "SPY")]
    es, spy, other = got
    assert es == SymbolLine("a", "ES", "Halted")
    assert spy.revisions == ("9", "10")
    assert spy.tick_rate == 150.0
    assert spy.tick_to_signal_p95 is None, "a quantile of no observations is no data"
    assert spy.error_ratio == 0.0, "zero errors over ticks is a real 0"
    assert spy.budget_left is None
    assert other.phase is None


@pytest.mark.parametrize(("line", "expected"), [
    (SymbolLine("a", "ES"), ["a/ES"] + [NO_DATA] * 10),
    (SymbolLine("", "SPY", "Ready", ("3", "4"), 152.04, 0.00123, 0.0042, 0.55, 0.51, -12345.6, 0.021, 250000.0, 0.987),
     ["SPY", "Ready", "3,4", "152.0", "1.23", "0.42%", "55.0% (+4.0)", "-12,346", "2.10%", "250,000", "98.7%"]),
    (SymbolLine("a", "QQQ", hit_rate=0.5), ["a/QQQ", NO_DATA, NO_DATA, NO_DATA, NO_DATA, NO_DATA, "50.0%", NO_DATA,
                                            NO_DATA, NO_DATA, NO_DATA]),
], ids=["nothing", "everything", "hit-rate-without-baseline"])
def test_cells(line, expected):
    assert len(cells(line)) == len(COLUMNS)
    assert cells(line) == expected


def test_json_lines_keep_null_for_no_data():
    data = SymbolLine("a", "SPY", revisions=("2",), tick_rate=5.0).as_dict()
    assert data["revisions"] == ["2"]
    assert data["tickRate"] == 5.0
    assert data["tickToSignalP95"] is None
    assert data["budgetLeft"] is None


def test_once_with_no_runtime_is_exit_3_in_every_format(monkeypatch):
    from typer.testing import CliRunner

    from opsctl import top_cli
    from opsctl.main import app

    monkeypatch.setattr(top_cli, "snapshot", lambda prometheus, options: top_cli.Snapshot([], []))
    result = CliRunner().invoke(app, ["top", "--once", "--prometheus-url", "http://127.0.0.1:1"])
    assert result.exit_code == 3
    assert "no trading runtimes in Prometheus at http://127.0.0.1:1" in result.output
    as_json = CliRunner().invoke(app, ["top", "--once", "-o", "json"])
    assert as_json.exit_code == 3
    assert as_json.stdout.strip() == "[]"
    live_json = CliRunner().invoke(app, ["top", "-o", "json"])
    assert live_json.exit_code == 2
