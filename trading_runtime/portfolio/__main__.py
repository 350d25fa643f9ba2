"""`python -m trading_runtime.portfolio --redis-url redis://... [--consumer NAME]`: the portfolio risk service.

Consumers of one group share the work: run several (a Deployment's replicas, each named after its pod) and
a dead one's unacknowledged entries are reclaimed by the others. SIGTERM finishes the batch in hand."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from prometheus_client import CollectorRegistry

from trading_runtime.health import HealthServer
from trading_runtime.logs import configure
from trading_runtime.portfolio.service import PortfolioService


async def serve(args: argparse.Namespace) -> None:
    registry = CollectorRegistry(auto_describe=True)
    service = PortfolioService(args.redis_url, args.consumer, registry, interval_s=args.interval,
                               batch=args.batch, claim_idle_s=args.claim_idle)

    async def redis_up() -> bool:
        try:
            return bool(await service.redis.ping())
        except Exception:
            return False

    health = HealthServer(registry, lambda: 0, {"redis": redis_up}, host=args.metrics_host,
                          port=args.metrics_port)
    await health.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.run(stop)
    finally:
        await service.close()
        await health.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m trading_runtime.portfolio", description=__doc__)
    parser.add_argument("--redis-url", default=os.environ.get("TRADEOPS_REDIS_URL"))
    parser.add_argument("--consumer", default=os.environ.get("HOSTNAME", socket.gethostname()),
                        help="this consumer's name in the group (unique per replica)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between risk publications")
    parser.add_argument("--batch", type=int, default=100, help="most entries read at once (backpressure)")
    parser.add_argument("--claim-idle", type=float, default=10.0,
                        help="seconds an entry may stay unacknowledged before another consumer takes it")
    parser.add_argument("--metrics-host", default="0.0.0.0")
    parser.add_argument("--metrics-port", type=int, default=9103)
    args = parser.parse_args()
    if not args.redis_url:
        print("cannot start: --redis-url (or TRADEOPS_REDIS_URL) is required", file=sys.stderr)
        return 2
    configure("portfolio-risk")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
