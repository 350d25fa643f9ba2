"""End-to-end tick-to-signal latency of a fleet: the synthetic feed server and one real runtime process per
symbol (as pods run), on this machine.

Start: the moment the feed server was *due* to send a frame (its fixed-rate schedule, stamped in the frame
as `sent`), so a feed or runtime that falls behind shows as latency (no coordinated omission). End: the
runtime's signal decision for that frame. Counted over every frame that can change a signal (underlying
quotes and trades once the book has a mid; option quotes and snapshots cannot), as each runtime records them
with `--latency-log`: the same span as its `tradeops_tick_to_signal_seconds` histogram. The in-process path
(every symbol's feed client and engine on one event loop in one process, same feed, same span) is measured
for comparison. No database, Redis or tracing: the tick path hands rows to queues that are not attached.

    python benchmarks/fleet_latency.py [--symbols 12] [--rate 2000] [--seconds 20] [--json]
    python benchmarks/fleet_latency.py --curve [--json]      # p95 against rate up to saturation
    python benchmarks/fleet_latency.py --profile             # where one runtime's time goes (cProfile)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import logging
import math
import os
import pathlib
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil
import yaml

SYMBOLS = ["SPY", "QQQ", "ES", "IWM", "DIA", "NQ", "AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META",
           "GOOG", "AMD", "NFLX", "JPM", "XLF", "GLD", "TLT", "SMH"]
MESSAGES_PER_TICK = 3.3
"""The synthetic feed's messages per symbol tick: a quote, a trade 30 % of the time, two option quotes."""
WARMUP_S = 3.0
SATURATED_P95_MS = 100.0
DRAIN_TIMEOUT_S = 60.0
TICK_PATH = (r"trading_runtime/(feeds/(client|protocol)|engine|signals|indicators|pricing|risk|execution|ml|metrics)"
             r"|validate_json|websockets/(asyncio|protocol|frames)|prometheus_client")
"""Functions of the tick path, for the --profile listing."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MIN_FRAMES = 200
"""Fewer decided frames than this: the p95 and p99 are not reported (too few for a tail)."""
BOOTSTRAP = 1000


def percentiles(latencies_s: list[float]) -> dict[str, float | None]:
    if len(latencies_s) < MIN_FRAMES:  # too few frames for a tail: no figure rather than a wrong one
        return {"e2e_p50_ms": None, "e2e_p95_ms": None, "e2e_p99_ms": None, "e2e_max_ms": None}
    ms = np.array(latencies_s) * 1000
    return {"e2e_p50_ms": round(float(np.percentile(ms, 50)), 3), "e2e_p95_ms": round(float(np.percentile(ms, 95)), 3),
            "e2e_p99_ms": round(float(np.percentile(ms, 99)), 3), "e2e_max_ms": round(float(ms.max()), 3)}


def shares(seconds: list[float]) -> dict[str, float | None]:
    """Percentiles of the runtimes' share of the span: from each frame's arrival (before parsing)."""
    return {k.replace("e2e", "share"): v for k, v in percentiles(seconds).items()}


def p95_ratio(numerator_s: list[float], denominator_s: list[float], seed: int = 0) -> dict[str, Any]:
    """p95(numerator) / p95(denominator) with a 95 % bootstrap interval (frames resampled within each path;
    frames of one process are not independent — a stall delays a run of them — so the interval is optimistic)."""
    if min(len(numerator_s), len(denominator_s)) < MIN_FRAMES:
        return {"ratio": None, "ci95": None}
    rng = np.random.default_rng(seed)
    a, b = np.array(numerator_s), np.array(denominator_s)
    ratios = [float(np.percentile(rng.choice(a, a.size), 95) / np.percentile(rng.choice(b, b.size), 95))
              for _ in range(BOOTSTRAP)]
    return {"ratio": round(float(np.percentile(a, 95) / np.percentile(b, 95)), 3),
            "ci95": [round(float(np.percentile(ratios, 2.5)), 3), round(float(np.percentile(ratios, 97.5)), 3)]}


@dataclass
class Feed:
    process: subprocess.Popen[str]
    url: str
    slips: int | None = None
    """Symbol ticks the feed's starved producer skipped (known once it has stopped)."""
    late_ms: dict[str, float | None] | None = None
    """How late the feed handed its frames to its senders, against their schedule (its own share)."""

    @classmethod
    def start(cls, symbols: list[str], tick_rate: float, port: int = 0, burst: bool = False) -> Feed:
        port = port or free_port()
        process = subprocess.Popen([sys.executable, "-m", "trading_runtime.feeds.server", "--symbols",
                                    ",".join(symbols), "--rate", f"{tick_rate:.3f}", "--port", str(port),
                                    *(["--burst"] if burst else [])], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("ws://"):
            process.kill()
            raise RuntimeError(f"feed server did not start: {url!r}")
        return cls(process, url)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        with contextlib.suppress(ValueError, IndexError, KeyError):
            last = json.loads(out.strip().splitlines()[-1])
            self.slips, self.late_ms = int(last["slips"]), last["late_ms"]


class Runtime:
    def __init__(self, workdir: pathlib.Path, symbol: str, feed_url: str, profile: bool = False) -> None:
        self.dir = workdir / symbol.lower()
        self.dir.mkdir(parents=True)
        self.symbol, self.feed_url = symbol, feed_url
        (self.dir / "runtime.yaml").write_text(yaml.safe_dump({"symbol": symbol, "market": "equity-options",
                                                                "revision": 1, "runtime": {}}))
        (self.dir / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))
        self.latency_log = self.dir / "latency.log"
        self.profile_path = self.dir / "profile.out" if profile else None
        self.start()

    def start(self) -> None:
        """Start the process on a free metrics port (again, when another process took the port first)."""
        self.port = free_port()
        prefix = ["-m", "cProfile", "-o", str(self.profile_path)] if self.profile_path else []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOPS_", "OTEL_"))}
        with (self.dir / "runtime.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *prefix, "-m", "trading_runtime", "--config", str(self.dir / "runtime.yaml"),
                 "--switches", str(self.dir / "switches.yaml"), "--feed-url", self.feed_url, "--metrics-host",
                 "127.0.0.1", "--metrics-port", str(self.port), "--spill-path", str(self.dir / "spill.jsonl"),
                 "--latency-log", str(self.latency_log)], stdout=log, stderr=subprocess.STDOUT, env=env)
        self.ps = psutil.Process(self.process.pid)

    def lost_its_port(self) -> bool:
        """Exited because another process bound its metrics port between free_port() and the runtime's bind."""
        return self.process.poll() is not None and b"address already in use" in (self.dir / "runtime.log").read_bytes()

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        # This runtime's series only: on a shared machine another process may answer on a reused port.
        values = [float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith(name) and f'symbol="{self.symbol}"' in line]
        return sum(values) if values else None

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def decided_after(self, end: float) -> bool:
        if not self.latency_log.exists():
            return False
        with self.latency_log.open("rb") as log:
            log.seek(max(0, self.latency_log.stat().st_size - 4096))
            lines = log.read().decode(errors="replace").splitlines()[1:]  # the first may be cut
        return any(float(line.split()[2]) >= end for line in lines if len(line.split()) == 5)

    def decisions(self, start: float, end: float) -> list[tuple[float, float]]:
        """(whole span, the runtime's share from the frame's arrival) of the decisions on frames the feed was
        due to send within [start, end)."""
        out = []
        for line in self.latency_log.read_text().splitlines() if self.latency_log.exists() else []:
            _, _, sent, latency, share = line.split()
            if start <= float(sent) < end:
                out.append((float(latency), float(share)))
        return out


def schedstat(pids: list[int]) -> tuple[int, int] | None:
    """(nanoseconds runnable but waiting for a CPU, times put on a CPU) summed over every thread of `pids`, from
    /proc/PID/task/*/schedstat (Linux); None where there is none. The difference over the window, divided, is
    the mean wait for a CPU per wake-up: the OS scheduling share of a frame's latency, as a mean."""
    waited = runs = 0
    for pid in pids:
        for stat in pathlib.Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                _, wait_ns, slices = stat.read_text().split()
            except (OSError, ValueError):  # a thread that ended meanwhile
                continue
            waited, runs = waited + int(wait_ns), runs + int(slices)
    return (waited, runs) if runs else None


def sched_wait(before: tuple[int, int] | None, after: tuple[int, int] | None, wall: float) -> dict[str, float] | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    waited, runs = after[0] - before[0], after[1] - before[1]
    return {"mean_us_per_wakeup": round(waited / runs / 1e3, 1), "wakeups_per_s": round(runs / wall, 1),
            "waiting_pct": round(100 * waited / 1e9 / wall, 1)}


def wait_until_serving(runtimes: list[Runtime], timeout: float = 300.0) -> None:
    """Every runtime answers on its metrics port (imported and started, looking for the feed)."""
    deadline = time.monotonic() + timeout
    for runtime in runtimes:
        while runtime.process.poll() is not None or runtime.metric("tradeops_feed_reconnects_total") is None:
            if runtime.lost_its_port():
                runtime.start()
            elif runtime.process.poll() is not None:
                raise RuntimeError(f"runtime {runtime.symbol} exited: see {runtime.dir / 'runtime.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"runtime {runtime.symbol} did not start")
            time.sleep(0.3)


def wait_until_flowing(runtimes: list[Runtime], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(runtimes)
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"runtimes not receiving the feed: {[r.symbol for r in waiting]}")
        for runtime in list(waiting):
            if runtime.process.poll() is not None:
                raise RuntimeError(f"runtime {runtime.symbol} exited: see {runtime.dir / 'runtime.log'}")
            if (runtime.metric("tradeops_feed_messages_total") or 0) > 0:
                waiting.remove(runtime)
        time.sleep(0.3)


class FeedProbe(threading.Thread):
    """A bare subscriber in its own thread (json only, no engine): how late the feed itself delivers each
    frame against its schedule. On a starved machine the generator falls behind; this separates that from
    the runtimes' share of the end-to-end figure."""

    def __init__(self, url: str, symbol: str) -> None:
        super().__init__(daemon=True)
        self.url, self.symbol = url, symbol
        self.window = (math.inf, math.inf)
        self.lags: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_size=2**22) as connection:
            await connection.send(json.dumps({"op": "subscribe", "symbols": [self.symbol]}))
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):  # no task per frame (wait_for makes one)
                        frame = json.loads(await connection.recv())
                    sent = frame.get("sent")
                    if sent is not None and self.window[0] <= sent < self.window[1]:
                        self.lags.append(time.time() - sent)


def wait_for_decisions_after(runtimes: list[Runtime], end: float, timeout: float) -> bool:
    """True once every runtime has logged a decision on a frame due at or after `end`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if all(r.decided_after(end) for r in runtimes):
            return True
    return False


def fleet(symbols: list[str], rate: float, seconds: float, profile: bool = False,
          burst: bool = False) -> dict[str, Any]:
    """One runtime process per symbol against one feed at `rate` messages a second in total."""
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-fleet-"))
    port = free_port()
    runtimes: list[Runtime] = []
    feed: Feed | None = None
    try:
        # The runtimes start first (a dozen Python processes importing at once starve a small machine) and
        # retry the feed until it is there: its fixed schedule starts once they are up.
        runtimes = [Runtime(workdir, s, f"ws://127.0.0.1:{port}", profile=profile and i == 0)
                    for i, s in enumerate(symbols)]
        wait_until_serving(runtimes)
        feed = Feed.start(symbols, rate / (len(symbols) * MESSAGES_PER_TICK), port, burst)
        wait_until_flowing(runtimes)
        probe = FeedProbe(feed.url, symbols[0])
        probe.start()
        time.sleep(WARMUP_S)
        feed_ps = psutil.Process(feed.process.pid)
        messages_before = sum(r.metric("tradeops_feed_messages_total") or 0 for r in runtimes)
        gaps_before = sum(r.metric("tradeops_feed_gaps_total") or 0 for r in runtimes)
        cpu_before = [r.cpu_seconds() for r in runtimes]
        feed_cpu_before = sum(feed_ps.cpu_times()[:2])
        runtime_pids = [r.process.pid for r in runtimes]
        sched_before = schedstat(runtime_pids), schedstat([feed.process.pid])
        start = time.time()
        probe.window = (start, start + seconds)
        time.sleep(seconds)
        end = time.time()
        probe.window = (start, end)
        wall = end - start
        cpu = sum(r.cpu_seconds() - b for r, b in zip(runtimes, cpu_before, strict=True))
        feed_cpu = sum(feed_ps.cpu_times()[:2]) - feed_cpu_before
        sched_after = schedstat(runtime_pids), schedstat([feed.process.pid])
        messages = sum(r.metric("tradeops_feed_messages_total") or 0 for r in runtimes) - messages_before
        gaps = sum(r.metric("tradeops_feed_gaps_total") or 0 for r in runtimes) - gaps_before
        rss = sum(r.ps.memory_info().rss for r in runtimes) / 2**20
        # Frames due inside the window may still be queued (a saturated feed or runtime): wait for each
        # runtime to decide on a frame due after the window, so the slowest frames are counted, not lost.
        drained = wait_for_decisions_after(runtimes, end, DRAIN_TIMEOUT_S)
        probe.stop.set()
        probe.join(5)
    finally:
        for runtime in runtimes:
            runtime.stop()
        if feed is not None:
            feed.stop()
    decided = [x for r in runtimes for x in r.decisions(start, end)]
    latencies = [whole for whole, _ in decided]
    profile_text = None
    if profile and runtimes and runtimes[0].profile_path and runtimes[0].profile_path.exists():
        out = io.StringIO()
        # The tick path only (start-up imports and the idle wait in epoll would top a plain listing).
        pstats.Stats(str(runtimes[0].profile_path), stream=out).sort_stats("cumulative").print_stats(TICK_PATH, 40)
        profile_text = out.getvalue()
    shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = {
        "symbols": len(symbols), "processes": len(runtimes), "rate_msgs_per_s": round(messages / wall, 1),
        "target_rate_msgs_per_s": rate, **percentiles(latencies), "frames": len(latencies),
        "runtime_share": shares([share for _, share in decided]),
        "feed_lag": {k.replace("e2e", "lag"): v for k, v in percentiles(probe.lags).items()},
        "feed_gaps": int(gaps), "feed_slips": feed.slips if feed else None,
        "feed_send_late": feed.late_ms if feed else None, "burst": burst,
        "saturated": not drained, "cpu_pct": round(100 * cpu / wall, 1),
        "feed_cpu_pct": round(100 * feed_cpu / wall, 1),
        "sched_wait": {"runtimes": sched_wait(sched_before[0], sched_after[0], wall),
                       "feed": sched_wait(sched_before[1], sched_after[1], wall)},
        "rss_mb_total": round(rss, 1), "seconds": round(wall, 1),
        "load_avg_1m": round(os.getloadavg()[0], 1)}  # other work on the machine: read the figures with it
    if profile_text:
        result["profile"] = profile_text
    result["_latencies"] = latencies
    result["_shares"] = [share for _, share in decided]
    return result


def _origin(clients: dict[str, Any], symbol: str) -> int:
    return int(clients[symbol].frame_origin)


async def _in_process(symbols: list[str], url: str, seconds: float) -> dict[str, Any]:
    from trading_runtime.chain_analysis import BackgroundAnalysis
    from trading_runtime.config import RenderedConfig, RuntimeConfig
    from trading_runtime.engine import SymbolEngine
    from trading_runtime.feeds.client import FeedClient, Message
    from trading_runtime.metrics import RuntimeMetrics

    window = {"start": float("inf"), "end": float("inf")}
    latencies: list[float] = []
    share: list[float] = []

    def record(message: Message, latency: float) -> None:
        sent = getattr(message, "sent", None)
        if sent is not None and window["start"] <= sent < window["end"]:
            latencies.append(latency)
            share.append(max(0.0, latency - by_symbol[message.symbol].frame_wait_ns / 1e9))  # type: ignore[union-attr]

    by_symbol: dict[str, FeedClient] = {}
    engines = []
    for symbol in symbols:
        config = RenderedConfig(symbol=symbol, market="equity-options", revision=1, runtime=RuntimeConfig())
        engine = SymbolEngine(config, True, RuntimeMetrics(symbol), lambda table, row: None,
                              origin=functools.partial(_origin, by_symbol, symbol), decided=record,
                              analysis=BackgroundAnalysis())
        by_symbol[symbol] = FeedClient(url, [symbol], engine.on_message)
        engines.append(engine)
    clients = list(by_symbol.values())
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in clients]
    process = psutil.Process()
    await asyncio.sleep(WARMUP_S + 2)
    cpu_before, messages_before = sum(process.cpu_times()[:2]), sum(c.stats.messages for c in clients)
    window["start"] = time.time()
    await asyncio.sleep(seconds)
    window["end"] = time.time()
    wall = window["end"] - window["start"]
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    messages = sum(c.stats.messages for c in clients) - messages_before
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*tasks)
    for engine in engines:
        engine.analysis.close()
    return {"processes": 1, "rate_msgs_per_s": round(messages / wall, 1), **percentiles(latencies),
            "runtime_share": shares(share), "_latencies": latencies,
            "frames": len(latencies), "cpu_pct": round(100 * cpu / wall, 1),
            "rss_mb_total": round(process.memory_info().rss / 2**20, 1)}


def in_process(symbols: list[str], rate: float, seconds: float, burst: bool = False) -> dict[str, Any]:
    feed = Feed.start(symbols, rate / (len(symbols) * MESSAGES_PER_TICK), burst=burst)
    try:
        result = asyncio.run(_in_process(symbols, feed.url, seconds))
    finally:
        feed.stop()
    return result | {"feed_slips": feed.slips}


def curve(symbols: list[str], seconds: float, burst: bool = False) -> list[dict[str, Any]]:
    """p95 against offered rate, doubling until the fleet saturates (p95 past 100 ms, or it no longer
    takes the offered rate)."""
    points = []
    rate = 250.0
    while rate <= 64_000:
        point = fleet(symbols, rate, seconds, burst=burst)
        points.append({k: point[k] for k in ("target_rate_msgs_per_s", "rate_msgs_per_s", "e2e_p50_ms",
                                             "e2e_p95_ms", "e2e_p99_ms", "e2e_max_ms", "frames", "runtime_share",
                                             "feed_lag", "feed_send_late", "feed_gaps", "feed_slips", "saturated",
                                             "cpu_pct", "feed_cpu_pct", "load_avg_1m")})
        print(json.dumps(points[-1]), file=sys.stderr, flush=True)
        p95 = point["e2e_p95_ms"]
        behind = point["rate_msgs_per_s"] < 0.9 * rate or point["feed_gaps"]
        if point["saturated"] or p95 is None or p95 > SATURATED_P95_MS or behind:
            break
        rate *= 2
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--rate", type=float, default=2000.0, help="feed messages per second, all symbols")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--curve", action="store_true", help="p95 against rate up to saturation")
    parser.add_argument("--profile", action="store_true", help="run the first runtime under cProfile")
    parser.add_argument("--burst", action="store_true",
                        help="every symbol's tick due at the same instant (default: the symbols take turns)")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process comparison")
    parser.add_argument("--save-latencies", type=pathlib.Path, metavar="FILE",
                        help="write the fleet's per-frame spans and shares (seconds, JSON) for comparisons of runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the in-process engines' order warnings are not the output
    if not 1 <= args.symbols <= len(SYMBOLS):
        parser.error(f"--symbols must be 1..{len(SYMBOLS)}")
    symbols = SYMBOLS[:args.symbols]
    result: dict[str, Any]
    if args.curve:
        result = {"symbols": len(symbols), "burst": args.burst, "curve": curve(symbols, args.seconds, args.burst)}
    else:
        result = fleet(symbols, args.rate, args.seconds, profile=args.profile, burst=args.burst)
        if not args.no_in_process:
            result["in_process"] = in_process(symbols, args.rate, args.seconds, args.burst)
            result["p95_fleet_over_in_process"] = p95_ratio(result["_latencies"],
                                                            result["in_process"].pop("_latencies"))
        latencies, shares_s = result.pop("_latencies"), result.pop("_shares")
        if args.save_latencies:
            args.save_latencies.write_text(json.dumps({"e2e_s": latencies, "share_s": shares_s}))
    profile = result.pop("profile", None)
    result["load_avg_end"] = [round(x, 1) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    if profile:
        print(profile, file=sys.stderr)
    if not args.curve and not result.get("frames"):
        sys.exit(1)  # nothing measured


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
