"""`opsctl backtest run|sweep|walk-forward`: a thin command line over the `backtest` package (data, spec,
Dask executor, jobs, reports). Results print as a summary, or as JSON with `--json`; `--report` writes an
HTML page or a PNG; a progress bar shows on a terminal while tasks run. The load report of a recorded file
goes to stderr. With `--mlflow-uri` (or MLFLOW_TRACKING_URI) each result is also tracked in MLflow
(modelops/backtest_tracking.py; the ml extra). Exit codes: 0 ok, 2 bad options or grid, 4 the tracking server
could not be reached (the result was printed, not tracked), 6 the data file was refused (nothing usable)."""

from __future__ import annotations

import pathlib
import sys
from typing import Annotated, Any

import typer
import yaml

from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb

# The backtest package (and Dask, about a second to import) is imported inside the commands: the other
# opsctl commands do not pay for it.

HELP = "Backtests of the live engine on recorded or synthetic data, on Dask."
app = kit.group(HELP)

FileOpt = Annotated[list[pathlib.Path] | None, typer.Option(
    "--file", "-f", help="recorded ticks or bars, CSV or Parquet (docs/recorded-data.md); repeatable: files of "
    "one symbol are merged (quotes, trades, chain), other symbols run separately")]
SymbolOpt = Annotated[str | None, typer.Option(
    help="symbol(s): the one to load from a file; comma-separated synthetic symbols (default SPY)")]
DaysOpt = Annotated[int, typer.Option("--synthetic-days", help="sessions of the seeded synthetic market")]
SeedOpt = Annotated[int, typer.Option(help="seed of the synthetic market")]
MinutesOpt = Annotated[int | None, typer.Option("--session-minutes", help="synthetic: only the first minutes")]
MarketOpt = Annotated[str, typer.Option(help="equity-options, index-options or futures-options (its calendar)")]
ConfigOpt = Annotated[pathlib.Path | None, typer.Option(
    "--config", help="runtime config YAML (the TradingSymbol's spec.config, or a rendered runtime.yaml)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE over the config, e.g. "
                                                  "strategy.entryScore=0.5 (repeatable)")]
GridOpt = Annotated[list[str], typer.Option("--grid", help="PATH=V1,V2,... to search (repeatable)")]
FeeOpt = Annotated[float, typer.Option("--fee", help="fees per contract")]
SlipOpt = Annotated[float, typer.Option("--slippage-ticks", help="ticks paid beyond the touch")]
LatencyOpt = Annotated[float, typer.Option("--latency-ms", help="decision-to-market latency")]
WorkersOpt = Annotated[int, typer.Option(help="worker processes of the embedded Dask cluster")]
SchedulerOpt = Annotated[str | None, typer.Option(
    envvar="DASK_SCHEDULER_ADDRESS", help="a Dask scheduler to use instead of an embedded cluster")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
ReportOpt = Annotated[pathlib.Path | None, typer.Option("--report", help="write a report: .html or .png")]
ObjectiveOpt = Annotated[str, typer.Option(help="sharpe, pnl or hit-rate-low")]
TimezoneOpt = Annotated[str | None, typer.Option(help="time zone of file timestamps written without one")]
HoursOpt = Annotated[bool, typer.Option("--extended-hours", help="keep file rows outside regular sessions")]
MlflowOpt = Annotated[str | None, typer.Option(
    "--mlflow-uri", envvar="MLFLOW_TRACKING_URI", help="track the result in this MLflow server (the ml extra)")]
BarSpreadOpt = Annotated[float, typer.Option("--bar-spread-bps", help="spread modelled around a bar's close "
                                             "when the file has no bid/ask")]


def _spec(market: str, config: pathlib.Path | None, overrides: list[str] | None, fee: float, slippage: float,
          latency: float) -> Any:
    from backtest.broker import FillModel
    from backtest.params import apply, parse_grid
    from backtest.runner import RunSpec
    from trading_runtime.config import RuntimeConfig

    runtime = RuntimeConfig()
    if config is not None:
        document = yaml.safe_load(config.read_text()) or {}
        runtime = RuntimeConfig.model_validate(document.get("runtime", document))
    params = {path: values[0] for path, values in parse_grid(overrides or []).items()}
    return RunSpec(market=market, config=apply(runtime, params),
                   fill=FillModel(fee_per_contract=fee, slippage_ticks=slippage, latency_ms=latency))


def _events(files: list[pathlib.Path] | None, symbol: str | None, days: int, seed: int, minutes: int | None,
            market: str, timezone: str | None, extended_hours: bool, bar_spread_bps: float) -> list[Any]:
    """Each symbol's events (files of one symbol merged in time order); load reports on stderr."""
    from backtest.data import RecordedSource, SyntheticSource, load
    from trading_runtime.feeds.events import merge

    sources: list[Any] = [RecordedSource(path=f, symbol=symbol, timezone=timezone, extended_hours=extended_hours,
                                         bar_spread_bps=bar_spread_bps) for f in files or []] or [
        SyntheticSource(symbol=s.strip().upper(), days=days, seed=seed + i, session_minutes=minutes)
        for i, s in enumerate((symbol or "SPY").split(","))]
    by_symbol: dict[str, list[Any]] = {}
    for source in sources:
        loaded = load(source, market)
        if loaded.report is not None:
            print(loaded.report.summary(), file=sys.stderr)
        by_symbol.setdefault(loaded.events.symbol, []).append(loaded.events)
    return [merge(parts) if len(parts) > 1 else parts[0] for parts in by_symbol.values()]


def _guarded(fn: Any) -> Any:
    """Bad input is a clear error with its exit code (the data file refused: 6; options or grid: 2)."""
    from trading_runtime.feeds.recorded import RecordedDataError

    try:
        return fn()
    except RecordedDataError as exc:
        raise OpsctlError(ExitCode.REJECTED, str(exc)) from None
    except ValueError as exc:
        raise OpsctlError(ExitCode.USAGE, str(exc)) from None


def _track(uri: str | None, kind: str, data: Any, performance: Any, result: Any, params: dict[str, Any],
           run_id: str | None = None) -> None:
    """Track a result in MLflow when asked; a server that cannot be reached is an error (exit 4)."""
    if uri is None:
        return
    try:
        from modelops.backtest_tracking import log_backtest
    except ImportError as exc:
        raise OpsctlError(ExitCode.USAGE, f"--mlflow-uri needs the ml extra (pip install 'tradeops[ml]'): {exc}") \
            from None
    try:
        tracked = log_backtest(uri, kind, data, performance, result, params, run_id)
    except Exception as exc:  # mlflow raises its own and requests' errors: all mean "not tracked"
        raise OpsctlError(ExitCode.UNREACHABLE, f"the result was not tracked in MLflow at {uri}: {exc}") from None
    print(f"tracked in MLflow: run {tracked}", file=sys.stderr)


def _print_performance(title: str, p: Any) -> None:
    def fmt(value: float | None) -> str:
        return "no data" if value is None else f"{value:.4g}"

    printing.say(title)
    printing.say(f"  P&L {p.pnl:,.2f} ({p.return_pct:.3f} %), Sharpe {fmt(p.sharpe)}"
         + (f" [{p.sharpe_ci[0]:.3g}, {p.sharpe_ci[1]:.3g}]" if p.sharpe_ci else "")
         + f", Sortino {fmt(p.sortino)}, max drawdown {p.max_drawdown * 100:.3f} %, turnover {p.turnover:.3g}")
    printing.say(f"  {p.fills} fills, fees {p.fees:,.2f}; hit rate {fmt(p.hit_rate)}"
         + (f" [{p.hit_rate_ci[0]:.3f}, {p.hit_rate_ci[1]:.3f}]" if p.hit_rate_ci else "")
         + f" on {p.calls} calls vs persistence {fmt(p.baseline_hit_rate)} on the same points")
    printing.say(f"  {p.verdict}: {p.reason}")


@verb(app, "run")
def run_command(file: FileOpt = None, symbol: SymbolOpt = None, synthetic_days: DaysOpt = 5, seed: SeedOpt = 1000,
                session_minutes: MinutesOpt = None, market: MarketOpt = "equity-options",
                config: ConfigOpt = None, set_: SetOpt = None, fee: FeeOpt = 0.65, slippage_ticks: SlipOpt = 0.0,
                latency_ms: LatencyOpt = 0.0, workers: WorkersOpt = 2, scheduler: SchedulerOpt = None,
                json_: JsonOpt = False, report: ReportOpt = None, timezone: TimezoneOpt = None,
                extended_hours: HoursOpt = False, bar_spread_bps: BarSpreadOpt = 1.0,
                mlflow_uri: MlflowOpt = None) -> None:
    """Backtest the runtime config on each symbol's data (one Dask task per symbol)."""
    from backtest.distributed import executor
    from backtest.jobs import run_all
    from backtest.report import write_run

    spec = _guarded(lambda: _spec(market, config, set_, fee, slippage_ticks, latency_ms))
    events = _guarded(lambda: _events(file, symbol, synthetic_days, seed, session_minutes, market, timezone,
                                      extended_hours, bar_spread_bps))
    with executor(workers, scheduler, progress=True) as pool:
        results = run_all(pool, events, spec)
    if report is not None:
        _guarded(lambda: write_run(results[0], report))
    if json_:
        print("[" + ",".join(r.model_dump_json() for r in results) + "]")
    else:
        for r in results:
            _print_performance(f"{r.data.symbol} run {r.run_id}: {r.data.events} events, {r.data.sessions} "
                               "sessions", r.performance)
            if r.errors:
                printing.say(f"  {r.errors} events failed in the engine (its errors metric counts them)")
    for r in results:
        _track(mlflow_uri, "run", r.data, r.performance, r, r.spec.model_dump(mode="json"), r.run_id)


@verb(app)
def sweep(grid: GridOpt, file: FileOpt = None, symbol: SymbolOpt = None, synthetic_days: DaysOpt = 5,
          seed: SeedOpt = 1000, session_minutes: MinutesOpt = None, market: MarketOpt = "equity-options",
          config: ConfigOpt = None, set_: SetOpt = None, fee: FeeOpt = 0.65, slippage_ticks: SlipOpt = 0.0,
          latency_ms: LatencyOpt = 0.0, objective: ObjectiveOpt = "sharpe", workers: WorkersOpt = 2,
          scheduler: SchedulerOpt = None, json_: JsonOpt = False, timezone: TimezoneOpt = None,
          extended_hours: HoursOpt = False, bar_spread_bps: BarSpreadOpt = 1.0, mlflow_uri: MlflowOpt = None) -> None:
    """Every combination of the grid on the same data, best first (the best of N overstates what to expect
    out of sample: walk-forward measures that)."""
    from backtest import jobs
    from backtest.distributed import executor
    from backtest.params import parse_grid

    spec = _guarded(lambda: _spec(market, config, set_, fee, slippage_ticks, latency_ms))
    parsed = _guarded(lambda: parse_grid(grid))
    (events,) = _guarded(lambda: _events(file, symbol, synthetic_days, seed, session_minutes, market, timezone,
                                         extended_hours, bar_spread_bps)[:1])
    with executor(workers, scheduler, progress=True) as pool:
        result = _guarded(lambda: jobs.sweep(pool, events, spec, parsed, _objective(objective)))
    if json_:
        print(result.model_dump_json())
    else:
        printing.say(f"{len(result.rows)} candidates on {result.data.symbol} ({result.data.sessions} sessions), "
                     f"by {objective}:")
        for row in result.rows:
            printing.say(f"  {row.score:>10.4g}  {row.params}  run {row.run_id}  {row.performance.verdict}")
        for candidate in result.candidates:
            if candidate.invalid:
                printing.say(f"  invalid: {candidate.invalid}")
    best = result.rows[0] if result.rows else None  # the metrics are the best candidate's
    _track(mlflow_uri, "sweep", result.data, best.performance if best else None, result,
           {"grid": grid, "objective": objective, "best": best.params if best else None},
           best.run_id if best else None)


@verb(app, "walk-forward")
def walk_forward(grid: GridOpt, train: Annotated[int, typer.Option(help="sessions per train fold")] = 3,
                 test: Annotated[int, typer.Option(help="sessions per test fold")] = 1,
                 step: Annotated[int | None, typer.Option(help="sessions between folds (default: --test)")] = None,
                 embargo: Annotated[int, typer.Option(help="sessions left out between train and test")] = 0,
                 anchored: Annotated[bool, typer.Option(help="train from the first session on")] = False,
                 file: FileOpt = None, symbol: SymbolOpt = None, synthetic_days: DaysOpt = 5, seed: SeedOpt = 1000,
                 session_minutes: MinutesOpt = None, market: MarketOpt = "equity-options", config: ConfigOpt = None,
                 set_: SetOpt = None, fee: FeeOpt = 0.65, slippage_ticks: SlipOpt = 0.0, latency_ms: LatencyOpt = 0.0,
                 objective: ObjectiveOpt = "sharpe", workers: WorkersOpt = 2, scheduler: SchedulerOpt = None,
                 json_: JsonOpt = False, report: ReportOpt = None, timezone: TimezoneOpt = None,
                 extended_hours: HoursOpt = False, bar_spread_bps: BarSpreadOpt = 1.0,
                 mlflow_uri: MlflowOpt = None) -> None:
    """Choose the grid's parameters on each train fold, score them on the next test fold only."""
    from backtest import jobs
    from backtest.distributed import executor
    from backtest.params import parse_grid
    from backtest.report import write_walk_forward

    spec = _guarded(lambda: _spec(market, config, set_, fee, slippage_ticks, latency_ms))
    parsed = _guarded(lambda: parse_grid(grid))
    (events,) = _guarded(lambda: _events(file, symbol, synthetic_days, seed, session_minutes, market, timezone,
                                         extended_hours, bar_spread_bps)[:1])
    with executor(workers, scheduler, progress=True) as pool:
        result = _guarded(lambda: jobs.walk_forward(pool, events, spec, parsed, train, test, step, embargo, anchored,
                                                    _objective(objective)))
    if report is not None:
        _guarded(lambda: write_walk_forward(result, report))
    if json_:
        print(result.model_dump_json())
    else:
        for fold in result.folds:
            printing.say(f"fold {fold.index}: train {fold.train_sessions[0]}..{fold.train_sessions[-1]}, test "
                 f"{fold.test_sessions[0]}..{fold.test_sessions[-1]}: chose {fold.chosen}; test P&L "
                 f"{fold.test.performance.pnl:,.2f} (run {fold.test.run_id})")
        _print_performance(f"out of sample, {len(result.folds)} folds", result.out_of_sample)
    _track(mlflow_uri, "walk-forward", result.data, result.out_of_sample, result,
           {"grid": grid, "objective": objective, "train": train, "test": test, "step": step, "embargo": embargo,
            "anchored": anchored, "folds": len(result.folds)})


def _objective(name: str) -> Any:
    if name not in ("sharpe", "pnl", "hit-rate-low"):
        raise OpsctlError(ExitCode.USAGE, f"objective {name!r}: sharpe, pnl or hit-rate-low")
    return name


@verb(app, "daskjob")
def daskjob(name: Annotated[str, typer.Argument(help="the DaskJob's name")],
            command: Annotated[list[str], typer.Argument(
                help="the backtest to run, after --: e.g. -- walk-forward --file /data/spy.parquet --grid ...")],
            image: Annotated[str, typer.Option(help="an image with opsctl and the backtest extra")],
            namespace: Annotated[str, typer.Option("--namespace", "-n")] = "tradeops-backtests",
            workers: WorkersOpt = 2,
            data_claim: Annotated[str | None, typer.Option(help="PersistentVolumeClaim with the data (at /data)")]
            = None) -> None:
    """Print a DaskJob (dask-kubernetes operator) that runs `opsctl backtest COMMAND` on a cluster of
    `--workers` workers: `opsctl backtest daskjob wf1 --image IMG -- walk-forward ARGS | kubectl apply -f -`."""
    from backtest.daskjob import daskjob as build

    manifest = _guarded(lambda: build(name, namespace, image, command, workers, data_claim))
    print(yaml.safe_dump(manifest, sort_keys=False), end="")
