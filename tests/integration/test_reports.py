"""The three reports on thirty days of generated history in a real Prometheus (backfilled with promtool) and a
real PostgreSQL (and S3, for the backups' cost), through `opsctl report`. Every figure checked is compared
with what tests/history.py computed from the samples it generated, not with the reports' own code."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from drills.s3 import S3Store
from opsctl.main import app
from policies.loader import load_dir
from reports.window import hours_in_month
from tests.history import History, World, backfilled_prometheus
from tests.integration.dr_support import make_bucket
from tests.prometheus_server import ThrowawayPrometheus
from tests.s3_server import ThrowawayS3
from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.integration
runner = CliRunner()
WORLD = World(symbols=("SPY", "QQQ", "IWM"), days=30)
COST = load_dir().cost["default"]
GIB = 2**30


@pytest.fixture(scope="module")
def history() -> History:
    return History(WORLD).build()


@pytest.fixture(scope="module")
def prometheus(history: History) -> Iterator[ThrowawayPrometheus]:
    server = backfilled_prometheus(history)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def database(history: History) -> Iterator[str]:
    postgres = ThrowawayPostgres().init().start()
    try:
        history.populate(postgres.dsn)
        yield postgres.dsn
    finally:
        postgres.destroy()


def window_args() -> list[str]:
    return ["--from", WORLD.start.isoformat(), "--to", WORLD.end.isoformat()]


def report(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["report", *args, "-o", "json"])
    assert result.exit_code in (0, 7), result.output
    return result.exit_code, json.loads(result.stdout)


def test_cost_per_symbol_against_the_generated_allocations(history, prometheus, s3: ThrowawayS3, tmp_path):
    settings = make_bucket(s3, "cost-report")
    with S3Store(settings) as store:
        for i in range(3):
            store.put_bytes(f"tradeops/backups/postgres/b{i}/database.pgdump", b"x" * (1 << 20))
    _, data = report("cost", "--prometheus-url", prometheus.url, "--bucket", settings.bucket, "--s3-endpoint",
                     s3.endpoint, *window_args())
    hours = WORLD.days * 24
    history.cost_truth({"cpu": COST.prices.cpu_core_hour, "memory": COST.prices.memory_gib_hour,
                        "storage": COST.prices.storage_gib_month}, COST.hours_per_month, history.usage_shares(),
                       hours, hours_in_month(WORLD.end))
    s3_cost = 3 * (1 << 20) / GIB * COST.prices.s3_storage_gib_month * hours / COST.hours_per_month
    rows = history.usage["postgresql"]
    by_symbol = {s["symbol"]: s for s in data["symbols"]}
    assert sorted(by_symbol) == sorted(WORLD.symbols)
    assert data["s3"] == pytest.approx(s3_cost, rel=1e-9)
    for symbol in WORLD.symbols:
        row = by_symbol[symbol]
        s3_share = s3_cost * rows[symbol] / sum(rows.values())
        assert row["total"] == pytest.approx(history.truth.cost[symbol] + s3_share, rel=1e-6), symbol
        assert row["projection"] == pytest.approx(history.truth.projection[symbol] + s3_share / hours
                                                  * hours_in_month(WORLD.end), rel=1e-6), symbol
        assert row["withinBudget"] is (row["projection"] < 100)
    assert data["sharedServices"]["mlflow"] is None, "a service with no pods is no data, not 0"
    assert data["idle"] > 0
    assert data["targetMet"] is all(s["withinBudget"] for s in data["symbols"])

    out = tmp_path / "cost"
    written = runner.invoke(app, ["report", "cost", "--prometheus-url", prometheus.url, *window_args(),
                                  "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert {p.name for p in out.iterdir()} == {"cost.md", "cost.html", "cost.json", "cost-projection.png"}
    assert (out / "cost-projection.png").read_bytes().startswith(b"\x89PNG")
    assert "| SPY |" in (out / "cost.md").read_text()
    assert "not measured (no bucket)" in (out / "cost.md").read_text()


def test_a_window_with_no_history_is_not_found(prometheus):
    result = runner.invoke(app, ["report", "cost", "--prometheus-url", prometheus.url, "--from", "2001-01-01",
                                 "--to", "2001-01-02"])
    assert result.exit_code == 3
    assert "no cost data" in result.stderr


def test_an_unreachable_prometheus_is_exit_code_4():
    result = runner.invoke(app, ["report", "cost", "--prometheus-url", "http://127.0.0.1:1"])
    assert result.exit_code == 4
    assert "unreachable" in result.stderr


def day(ts: float) -> str:
    """The key the reports give the day a day-end timestamp closes."""
    return (datetime.datetime.fromtimestamp(ts, datetime.UTC) - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d")


def test_production_analysis_against_the_generated_history(history, prometheus, database, tmp_path):
    truth = history.truth
    _, data = report("performance", "--prometheus-url", prometheus.url, "--database-url", database, *window_args())
    symbols = data["symbols"]
    assert sorted(symbols) == sorted([*WORLD.symbols, "fleet"])
    for symbol in WORLD.symbols:
        mine = symbols[symbol]
        for end in truth.day_ends:
            for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                assert mine["latency"][key][day(end)] == pytest.approx(truth.latency[symbol][end][q], rel=1e-9)
            assert mine["errorRatio"][day(end)] == pytest.approx(truth.error_ratio[symbol][end], rel=1e-9)
            assert mine["orders"][day(end)] == truth.orders_per_day[symbol][end]
        for slo in ("tick-to-signal-latency", "error-ratio", "availability"):
            assert mine["budgetSpent"][slo] == pytest.approx(truth.budget_spent[symbol, slo], rel=1e-9, abs=1e-12)
        hits, calls = truth.hit_rate[symbol]
        assert (mine["hitRate"]["hits"], mine["hitRate"]["calls"]) == (hits, calls)
        assert mine["restarts"] == truth.restarts[symbol]
        assert mine["rejections"] == truth.rejections[symbol]
    assert [(o["symbol"], o["start"], o["seconds"]) for o in data["outages"]] == \
        [(o.symbol, o.start, o.seconds) for o in sorted(truth.outages, key=lambda o: o.start)]
    assert [(h["symbol"], h["what"], h["start"], h["seconds"]) for h in data["halts"]] == \
        [(h.symbol, h.what, h.start, h.seconds) for h in sorted(truth.halts, key=lambda h: h.start)]
    assert [(d["drill"], d["finished"], d["success"], d["duration"], d["rto"]) for d in data["drills"]] == \
        [(d.drill, d.finished, d.success, d.duration, d.rto) for d in truth.drills]
    rollback, = data["rollbacks"]
    assert (rollback["symbol"], rollback["exposed_seconds"]) == ("SPY", 19 * 60)
    spy_outage = next(o for o in truth.outages if o.symbol == "SPY")
    assert day(spy_outage.start - spy_outage.start % 86400 + 86400) in symbols["SPY"]["pnlDaysWithRestart"]
    worst = max(truth.budget_spent.items(), key=lambda item: item[1])
    assert (data["findings"][0]["symbol"], data["findings"][0]["slo"]) == worst[0]
    assert [f["spent"] for f in data["findings"]] == sorted((f["spent"] for f in data["findings"]), reverse=True)

    out = tmp_path / "performance"
    written = runner.invoke(app, ["report", "performance", "--prometheus-url", prometheus.url, "--database-url",
                                  database, *window_args(), "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert {p.name for p in out.iterdir()} >= {"performance.md", "performance.html", "performance.json",
                                              "performance-latency.png", "performance-availability.png"}
    markdown = (out / "performance.md").read_text()
    assert "## Findings: what to optimise next" in markdown
    assert "OVERSPENT" in markdown


def test_compliance_evidence_against_the_recorded_history(history, prometheus, database, tmp_path):
    truth = history.truth
    code, data = report("compliance", "--prometheus-url", prometheus.url, "--database-url", database, *window_args())
    assert code == 0
    assert data["audit"]["verified"] is True
    with psycopg.connect(database) as conn:
        stored = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert data["audit"]["entries"] == stored
    expected_changes = [c for c in truth.changes if c[0] in {"symbol-created", "symbol-changed", "halt", "unhalt"}]
    assert [(c["kind"], c["actor"], c["symbol"]) for c in data["changes"]] == expected_changes
    assert data["killSwitchTests"] == truth.kill_switch_tests == 1
    use, = data["killSwitch"]
    assert (use["symbol"], use["test"], use["halted_seconds"], use["runtime_reaction_seconds"]) == \
        ("SPY", True, 1800, 20)
    assert sum(r["count"] for r in data["rejections"]) == sum(truth.rejections.values())
    assert {i["kind"] for i in data["incidents"]} == {"rollback", "self-healing", "risk-event"}
    assert [(d["drill"], d["success"]) for d in data["drills"]] == [(d.drill, d.success) for d in truth.drills]

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        original = conn.execute("SELECT actor FROM audit_log WHERE seq = 10").fetchone()[0]
        conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 10")
        try:
            out = tmp_path / "compliance"
            broken = runner.invoke(app, ["report", "compliance", "--prometheus-url", prometheus.url, "--database-url",
                                         database, *window_args(), "--out", str(out)])
            assert broken.exit_code == 7
            assert "audit chain BROKEN" in (out / "compliance.md").read_text()
            assert json.loads((out / "compliance.json").read_text())["audit"]["findings"] == [
                {"seq": 10, "problem": "edited", "message": "content does not match its hash"}]
        finally:
            conn.execute("UPDATE audit_log SET actor = %s WHERE seq = 10", (original,))
