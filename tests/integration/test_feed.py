"""The feed client against the synthetic WebSocket server: streaming, gaps, malformed frames, outages."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from trading_runtime.feeds.client import FeedClient
from trading_runtime.feeds.protocol import Quote, Snapshot, Trade
from trading_runtime.feeds.server import FeedServer


class Recorder:
    def __init__(self) -> None:
        self.messages: list = []

    async def __call__(self, message) -> None:
        self.messages.append(message)

    def count(self, kind) -> int:
        return sum(isinstance(m, kind) for m in self.messages)


@contextlib.asynccontextmanager
async def running(client: FeedClient):
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(predicate, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_streams_snapshots_quotes_and_trades_in_order():
    recorder = Recorder()
    async with FeedServer(["SPY", "ES"], seed=1, rate=100) as server:
        client = FeedClient(server.url, ["SPY", "ES"], recorder, seed=0)
        async with running(client):
            await until(lambda: recorder.count(Trade) >= 20)
    assert recorder.count(Snapshot) == 2
    assert recorder.count(Quote) > 50
    seqs = [m.seq for m in recorder.messages if getattr(m, "symbol", "") == "SPY"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert client.stats.malformed == 0
    assert client.stats.gaps == 0


async def test_gap_is_detected_and_resynced_from_a_snapshot():
    recorder = Recorder()
    async with FeedServer(["SPY"], seed=2, rate=100) as server:
        client = FeedClient(server.url, ["SPY"], recorder, seed=0)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 10)
            server.skip_sequence("SPY")
            await until(lambda: client.stats.resyncs == 1)
            after = len(recorder.messages)
            await until(lambda: len(recorder.messages) > after + 20)
    assert client.stats.gaps == 1
    assert recorder.count(Snapshot) == 2
    applied = [m.seq for m in recorder.messages if isinstance(m, (Quote, Trade, Snapshot))]
    assert all(b > a for a, b in itertools.pairwise(applied))


async def test_malformed_and_hostile_frames_are_counted_and_dropped():
    recorder = Recorder()
    frames = ["not json", "{}", '{"type": "quote"}', '{"type": "quote", "symbol": "SPY", "seq": 1e400}', "[]",
              '{"type": "trade", "symbol": "SPY", "seq": 1, "ts": 1, "instrument": "SPY", "price": -5, "size": 1}',
              "\x00" * 100, '{"type": "snapshot", "symbol": "SPY", "seq": 0, "ts": 0, "underlying": null}',
              '{"a": ' * 500]
    async with FeedServer(["SPY"], seed=3, rate=50) as server:
        client = FeedClient(server.url, ["SPY"], recorder, seed=0)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 5)
            for frame in frames:
                server.send_raw(frame)
            await until(lambda: client.stats.malformed == len(frames))
            before = recorder.count(Quote)
            await until(lambda: recorder.count(Quote) > before + 10)
    assert client.stats.reconnects == 0


async def test_feed_killed_mid_stream_reconnects_and_resumes():
    recorder = Recorder()
    async with FeedServer(["SPY"], seed=4, rate=100) as server:
        client = FeedClient(server.url, ["SPY"], recorder, seed=0, backoff_base=0.05)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 10)
            await server.drop_connections()
            await until(lambda: client.stats.reconnects >= 1)
            await until(lambda: recorder.count(Snapshot) >= 2)
            before = recorder.count(Quote)
            await until(lambda: recorder.count(Quote) > before + 10)


async def test_server_down_is_retried_with_backoff_until_it_comes_up():
    recorder = Recorder()
    server = FeedServer(["SPY"], seed=5, rate=100, port=0)
    await server.start()
    port = server.port
    await server.stop()
    client = FeedClient(f"ws://127.0.0.1:{port}", ["SPY"], recorder, seed=0, backoff_base=0.05, backoff_cap=0.2)
    async with running(client):
        await until(lambda: client.stats.reconnects >= 3)
        async with FeedServer(["SPY"], seed=5, rate=100, port=port):
            await until(lambda: recorder.count(Quote) >= 5)


async def test_silent_feed_is_detected_as_stale():
    async def silent(connection) -> None:
        await connection.wait_closed()

    async with serve(silent, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = FeedClient(f"ws://127.0.0.1:{port}", ["SPY"], Recorder(), stale_after=0.3, seed=0,
                            backoff_base=0.05)
        async with running(client):
            await until(lambda: client.stats.stale_timeouts >= 2)
    assert client.stats.reconnects >= 1  # a stale feed is left for a new connection


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_the_feed_process_stops_on_a_signal_and_reports_what_it_skipped(signum):
    """Started as a script's background job starts it (SIGINT ignored), it still stops cleanly on either signal
    and prints what it sent and skipped (the fleet benchmark reads `slips` from it)."""
    process = subprocess.Popen([sys.executable, "-m", "trading_runtime.feeds.server", "--symbols", "SPY",
                                "--rate", "20", "--port", "0"], stdout=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ws://127.0.0.1:")
        time.sleep(0.5)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()  # reaps it and closes its pipe
    assert process.returncode == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["sent"] > 0
    assert summary["slips"] >= 0
    assert summary["late_ms"]["p50"] is not None  # the feed's own lateness, for the benchmark to separate


async def test_gap_is_resynced_from_the_snapshot_source_when_one_is_given():
    recorder = Recorder()
    async with FeedServer(["SPY"], seed=2, rate=100) as server:
        asked: list[str] = []

        async def source(symbol: str) -> Snapshot:  # the feed's current state, as a broker's API has it
            asked.append(symbol)
            return Snapshot.model_validate_json(server._snapshot(symbol))

        client = FeedClient(server.url, ["SPY"], recorder, seed=0, snapshots=source)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 10)
            server.skip_sequence("SPY")
            await until(lambda: client.stats.resyncs == 1)
            after = len(recorder.messages)
            await until(lambda: len(recorder.messages) > after + 20)
    assert asked == ["SPY"]
    assert (client.stats.gaps, client.stats.api_snapshots, client.stats.api_snapshot_failures) == (1, 1, 0)
    assert recorder.count(Snapshot) == 2  # the subscription's and the source's: none asked of the feed
    applied = [m.seq for m in recorder.messages if isinstance(m, (Quote, Trade, Snapshot))]
    assert all(b > a for a, b in itertools.pairwise(applied))


async def test_a_failing_snapshot_source_falls_back_to_the_feeds_snapshot():
    recorder = Recorder()

    async def source(symbol: str) -> Snapshot:
        raise ConnectionError("the API is down")

    async with FeedServer(["SPY"], seed=2, rate=100) as server:
        client = FeedClient(server.url, ["SPY"], recorder, seed=0, snapshots=source)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 10)
            server.skip_sequence("SPY")
            await until(lambda: client.stats.resyncs == 1)
    assert (client.stats.api_snapshots, client.stats.api_snapshot_failures) == (0, 1)
    assert recorder.count(Snapshot) == 2


async def test_a_snapshot_older_than_the_gap_is_not_applied_and_the_feed_resyncs():
    recorder = Recorder()

    async def source(symbol: str) -> Snapshot:  # a source that lags far behind the feed
        return Snapshot.model_validate_json(json.dumps({**json.loads(server._snapshot(symbol)), "seq": 1}))

    async with FeedServer(["SPY"], seed=2, rate=100) as server:
        client = FeedClient(server.url, ["SPY"], recorder, seed=0, snapshots=source)
        async with running(client):
            await until(lambda: recorder.count(Quote) >= 10)
            server.skip_sequence("SPY")
            await until(lambda: client.stats.resyncs == 1)
    assert (client.stats.api_snapshots, client.stats.api_snapshot_failures) == (0, 1)
    assert [m.seq for m in recorder.messages if isinstance(m, Snapshot)][1] > 1, "the lagging snapshot was applied"


TICK_TOLERANCE = 2e-4
"""Seconds: stamps map the monotonic schedule onto the wall clock as it is, which NTP may slew (0.5 % here)."""


async def _stamps(server: FeedServer, seconds: float) -> dict[str, list[float]]:
    """Each symbol's `sent` stamps over `seconds`, as a bare subscriber to every symbol receives them."""
    stamps: dict[str, list[float]] = {symbol: [] for symbol in server.symbols}
    async with connect(server.url) as connection:
        await connection.send(json.dumps({"op": "subscribe", "symbols": server.symbols}))
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            frame = json.loads(await connection.recv())
            if "sent" in frame and frame["sent"] not in stamps[frame["symbol"]]:
                stamps[frame["symbol"]].append(frame["sent"])
    return stamps


async def test_the_symbols_are_due_in_turn_each_on_its_own_fixed_schedule():
    symbols = ["SPY", "QQQ", "ES", "IWM"]
    async with FeedServer(symbols, seed=6, rate=50) as server:
        stamps = await _stamps(server, 1.0)
    # Every symbol ticks at the rate, stamped with its schedule (not its sending). A producer starved past its
    # lag bound skips beats (the market does not replay them) and counts each skipped symbol tick in `slips`:
    # a gap is then a whole number of periods, and the extra periods are no more than the slips counted.
    skipped = 0
    for symbol in symbols:
        periods = _periods(stamps[symbol], 1 / 50)
        assert len(stamps[symbol]) + sum(periods) - len(periods) >= 30, symbol
        skipped += sum(periods) - len(periods)
    assert skipped <= server.slips
    # ... and the symbols are evenly phased: one due every 1/(rate × symbols) s, never two at once
    assert min(_periods(sorted(s for symbol in symbols for s in stamps[symbol]), 1 / 200)) >= 1


def _periods(stamps: list[float], period: float) -> list[int]:
    """How many whole periods lie between consecutive stamps (each gap must be a whole, non-zero number)."""
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    counts = [round(gap / period) for gap in gaps]
    # (the tolerance grows with the gap: the wall clock's slew adds up over skipped periods)
    assert all(abs(gap - count * period) < TICK_TOLERANCE * max(count, 1)
               for gap, count in zip(gaps, counts, strict=True))
    return counts


async def test_in_a_burst_every_symbol_is_due_at_the_same_instant():
    symbols = ["SPY", "QQQ", "ES"]
    async with FeedServer(symbols, seed=6, rate=50, burst=True) as server:
        stamps = await _stamps(server, 0.6)
    common = set(stamps["SPY"]) & set(stamps["QQQ"]) & set(stamps["ES"])
    assert len(common) >= len(stamps["SPY"]) - 2  # the first and last may be cut by the window


async def test_frames_are_not_compressed_even_when_a_client_offers_it():
    async with FeedServer(["SPY"], seed=6, rate=50) as server, connect(server.url) as connection:  # offers deflate
        assert connection.response is not None
        assert "Sec-WebSocket-Extensions" not in connection.response.headers


async def test_stamps_follow_the_wall_clock_when_ntp_steps_it(monkeypatch):
    """The schedule runs on the monotonic clock, its stamps on the wall clock as it is when each beat is made (as
    the clients read theirs): a wall clock that NTP steps or slews (this VM's ran 0.5 % fast) does not pile up
    as latency the longer the feed runs."""
    async with FeedServer(["SPY"], seed=6, rate=50) as server:
        await asyncio.sleep(0.1)
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 100.0)  # a step of the wall clock
        stamps = await _stamps(server, 0.4)
        now = time.time()
    assert len(stamps["SPY"]) >= 10
    assert all(abs(now - stamp) < 2.0 for stamp in stamps["SPY"][2:])  # the first were made before the step
