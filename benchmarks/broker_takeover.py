"""How long trading stops when the leader of a symbol that orders through a broker's API is killed.

Each run starts its own PostgreSQL, the emulated API server (the Lease), the synthetic feed, the devstack's
paper broker (`python -m devstack.paper_broker`) and two real runtime processes of SPY with `config.broker`
(the leader flushes its rows once a minute, so it dies with fills the book lacks). Once the leader has filled
`--orders` orders at the broker it is killed with SIGKILL, and the figures are taken from the new leader's log
(its ECS `@timestamp`s, same host clock) and the broker's fills listing:

- `lease_s`: SIGKILL → the new leader took the Lease (its "took the lease" line): the lease duration counted
  from the last renewal it saw, plus up to its retry period;
- `trading_s`: SIGKILL → the book reconciled and trading allowed again (its "took over" line): adds the fencing
  wait, the broker's fills and positions reads, the book's reads and the replay;
- `fence_s`: the fencing wait the new leader computed (`fence_wait`, from the lease timings and skew);
- `first_order_s`: SIGKILL → the first fill at the broker after it. This includes waiting for the strategy's
  next change of view, which is the market's doing, not the takeover's: read `trading_s` for the takeover;
- `replayed`: the broker fills the new leader booked that the killed leader had not flushed.

Lease timings `--timings 3,2,0.5` (duration, renew deadline, retry period: the integration tests'; `5,4,1`
are the runtime's defaults), skew allowance 0.5 s. Excludes: network distance (all local) and a real broker's
latency; includes the load of other processes on this 2-core machine (the 1-minute load average is printed).

    PYTHONPATH=. python benchmarks/broker_takeover.py [--runs 3] [--orders 3] [--timings 3,2,0.5] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import signal
import statistics
import tempfile
import time
import urllib.request
from typing import Any

from devstack.processes import EmulatorProcess, FeedProcess, PaperBrokerProcess
from tests.integration.runtime_process import RuntimeProcess, wait_until
from tests.servers import ThrowawayPostgres

SECRET = "bench-alpha"
STRATEGY = {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5}


def replica(workdir: pathlib.Path, name: str, feed: str, broker: str, dsn: str, emulator: str,
            flush_ms: int, timings: list[str]) -> RuntimeProcess:
    runtime = {"strategy": STRATEGY, "parameters": {"batchSize": 10000, "flushIntervalMs": flush_ms},
               "broker": {"endpoints": [broker], "openSeconds": 1, "deadlineSeconds": 5, "orderTimeoutSeconds": 10,
                          "keys": [{"name": "alpha", "secretKeyRef": {"name": "broker-keys", "key": "alpha"},
                                    "ratePerSecond": 100, "burst": 20}]}}
    env = {"TRADEOPS_API_KEY_ALPHA": SECRET, "TRADEOPS_KUBE_API_URL": emulator, "POD_NAMESPACE": "default",
           "POD_NAME": name}
    process = RuntimeProcess(workdir / name, "SPY", feed, runtime=runtime, database_url=dsn, env=env)
    duration, deadline, retry = timings
    process.args += ["--lease-name", "tradeops-spy", "--lease-duration", duration, "--renew-deadline", deadline,
                     "--retry-period", retry]
    return process


def broker_fills(url: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{url}/v1/fills?since=1970-01-01T00:00:00Z",
                                     headers={"Authorization": f"Bearer {SECRET}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return list(json.loads(answer.read()))


def epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def logged_at(runtime: RuntimeProcess, text: str) -> tuple[float, str] | None:
    """When the first line containing `text` was logged, and its message."""
    for line in runtime.log_path.read_text().splitlines():
        if text in line and line.startswith("{"):
            record = json.loads(line)
            return epoch(record["@timestamp"]), str(record["message"])
    return None


def one_run(workdir: pathlib.Path, orders: int, timings: list[str]) -> dict[str, Any]:
    started: list[Any] = []
    try:
        postgres = ThrowawayPostgres().init().start()
        started.append(postgres)
        emulator = EmulatorProcess(workdir).start()
        started.append(emulator)
        feed = FeedProcess(workdir, symbols="SPY", rate=100.0, seed=11).start()
        started.append(feed)
        broker = PaperBrokerProcess(workdir, feed.url, {"alpha": (SECRET, 200.0, 50)}, symbols="SPY",
                                    endpoints=1).start()
        started.append(broker)
        url = broker.urls[0]
        leader = replica(workdir, "spy-a", feed.url, url, postgres.dsn, emulator.url, 60000, timings)
        standby = replica(workdir, "spy-b", feed.url, url, postgres.dsn, emulator.url, 50, timings)
        started += [standby, leader]
        leader.start()
        wait_until(lambda: leader.metric("tradeops_leader{") == 1.0, 60, "the first replica leads")
        standby.start()
        wait_until(lambda: (standby.metric("tradeops_ticks_total") or 0) > 50, 60, "the standby's warm state")
        wait_until(lambda: len(broker_fills(url)) >= orders, 240, f"{orders} fills at the broker")
        assert leader.process is not None
        leader.process.send_signal(signal.SIGKILL)
        killed = time.time()
        leader.process.wait(10)
        wait_until(lambda: standby.metric("tradeops_leader{") == 1.0, 60, "the takeover", every=0.02)
        first = wait_until(lambda: [f for f in broker_fills(url) if epoch(f["filledAt"]) > killed], 120,
                           "a first order after the takeover")
        leased = wait_until(lambda: logged_at(standby, "took the lease of"), 10, "the lease's log")
        fenced = wait_until(lambda: logged_at(standby, "for the old leader's orders to expire"), 10, "the fence")
        took = wait_until(lambda: logged_at(standby, "took over"), 10, "the takeover's log")
        return {"lease_s": round(leased[0] - killed, 3), "trading_s": round(took[0] - killed, 3),
                "fence_s": float(fenced[1].split("waiting ", 1)[1].split("s", 1)[0]),
                "first_order_s": round(min(epoch(f["filledAt"]) for f in first) - killed, 3),
                "replayed": standby.metric("tradeops_fills_replayed_total") or 0.0}
    finally:
        for server in reversed(started):
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=3, help="fills at the broker before the leader is killed")
    parser.add_argument("--timings", default="3,2,0.5",
                        help="lease duration, renew deadline, retry period (s); the runtime's defaults are 5,4,1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    timings = args.timings.split(",")
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="takeover-") as workdir:
            runs.append(one_run(pathlib.Path(workdir), args.orders, timings))
    result = {"timings": args.timings, "runs": runs, "load_average_1m": round(os.getloadavg()[0], 2)}
    for key in ("lease_s", "trading_s", "first_order_s"):
        values = [r[key] for r in runs]
        result[f"{key}_median"] = round(statistics.median(values), 3)
        result[f"{key}_max"] = max(values)
    if args.json:
        print(json.dumps(result))
        return
    for run in runs:
        print("  ".join(f"{k} {v}" for k, v in run.items()))
    print(f"median: lease {result['lease_s_median']} s, trading {result['trading_s_median']} s, first order "
          f"{result['first_order_s_median']} s (load average {result['load_average_1m']})")


if __name__ == "__main__":
    main()
