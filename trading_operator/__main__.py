"""Run the operator: `python -m trading_operator [--namespace NS ...] [--standalone]`."""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import signal
import time

import kopf

import trading_operator.alert_webhook
import trading_operator.fleet_handlers
import trading_operator.handlers
import trading_operator.symbol_gauges
import trading_operator.tracing  # the SDK, started at startup when an endpoint is set
from trading_operator.metrics import serve as serve_metrics


def default_priority() -> int:
    """Newer instances win leadership (kopf peering): during a rolling restart the new pod takes over
    at once and the old one pauses, instead of both freezing on equal priorities."""
    return int(os.environ.get("TRADEOPS_PEERING_PRIORITY", int(time.time()) % 2**31))


def main() -> None:
    parser = argparse.ArgumentParser(prog="trading_operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[],
                        help="watch only these namespaces (repeatable); default: all namespaces")
    parser.add_argument("--standalone", action="store_true",
                        default=os.environ.get("TRADEOPS_STANDALONE") == "1",
                        help="no peering (single instance; not for production HA)")
    parser.add_argument("--peering", default=os.environ.get("TRADEOPS_PEERING", "tradeops"),
                        help="kopf peering name shared by the operator's replicas")
    parser.add_argument("--priority", type=int, default=default_priority(), help="peering priority")
    parser.add_argument("--liveness", default=os.environ.get("TRADEOPS_LIVENESS"),
                        help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRADEOPS_METRICS_PORT", "0")),
                        help="serve the operator's Prometheus metrics on this port (0: off)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.metrics_port:
        serve_metrics(args.metrics_port)
    trading_operator.handlers.WATCHED_NAMESPACES[:] = args.namespace
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON,
                   log_prefix=False)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    if not args.verbose:  # "Handler ... succeeded" for every event of every object: --verbose shows them
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # A profile of the run so far, written on SIGUSR2 or at exit: `python -m pstats PATH`; SIGUSR1 starts it
    # afresh (a profile of the operator at rest, without its start).
    profile_path = os.environ.get("TRADEOPS_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None and profile_path:
        signal.signal(signal.SIGUSR2, lambda *_: profiler.dump_stats(profile_path))

        def afresh(*_: object) -> None:
            profiler.disable()
            profiler.clear()
            profiler.enable()
        signal.signal(signal.SIGUSR1, afresh)
        profiler.enable()
    try:
        kopf.run(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=args.standalone,
            peering_name=None if args.standalone else args.peering,
            priority=args.priority,
            liveness_endpoint=args.liveness,
        )
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)


if __name__ == "__main__":
    main()
