"""`python -m modelops train`: train the meta-model walk-forward on a recorded file or the seeded synthetic
market, track the run in MLflow and register the model as the symbol's `challenger` (promote it with
`opsctl model promote`). Prints the pooled held-out figures; exit 1 when the data gave no training rows."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

from backtest.data import RecordedSource, SyntheticSource, load
from modelops.tracking import log_training
from modelops.train import TrainSpec, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    command = verbs.add_parser("train", help="train, track and register a meta-model")
    command.add_argument("--file", type=pathlib.Path, help="recorded ticks or bars (docs/recorded-data.md)")
    command.add_argument("--symbol", default="SPY")
    command.add_argument("--synthetic-days", type=int, default=8)
    command.add_argument("--session-minutes", type=int)
    command.add_argument("--seed", type=int, default=1000)
    command.add_argument("--market", default="equity-options")
    command.add_argument("--train-sessions", type=int, default=4)
    command.add_argument("--test-sessions", type=int, default=1)
    command.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    command.add_argument("--model-name", help="registered model to add the version to (default: the symbol's, "
                                              "tradeops-meta-<symbol>)")
    command.add_argument("--trigger", default="", help="why it was trained, tagged on the run (the operator's "
                                                       "retraining Job: the regime change)")
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("no MLflow tracking server: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    source = RecordedSource(path=args.file, symbol=args.symbol) if args.file else SyntheticSource(
        symbol=args.symbol, days=args.synthetic_days, seed=args.seed, session_minutes=args.session_minutes)
    events = load(source, args.market).events
    spec = TrainSpec(market=args.market, train_sessions=args.train_sessions, test_sessions=args.test_sessions)
    try:
        result = train(events, spec)
    except ValueError as exc:
        print(f"modelops: error: {exc}", file=sys.stderr)
        return 1
    registered = log_training(result, args.tracking_uri, name=args.model_name, trigger=args.trigger)
    print(json.dumps({"model": registered.name, "version": registered.version, "run_id": registered.run_id,
                      "rows": result.rows, "folds": len(result.folds),
                      "pooled": result.pooled.model_dump(mode="json", exclude={"curve"})}, indent=2))
    return 0 if result.rows else 1


if __name__ == "__main__":
    sys.exit(main())
