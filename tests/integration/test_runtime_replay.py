"""`python -m trading_runtime --replay FILE --speed X`: the runtime process with a recorded file as its
feed stores everything a pod would in a real PostgreSQL, then exits 0 at the end of the file; a file with
nothing usable is a clear error and exit 2."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys

import psycopg
import yaml

from tests.servers import ThrowawayPostgres, free_port
from tests.unit.recorded_files import MONDAY, minute_bars, write_csv

CONFIG = {"symbol": "SPY", "market": "equity-options", "revision": 1, "runtime": {}}


async def run_runtime(tmp_path, *args: str) -> tuple[int, str]:
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trading_runtime", "--config", str(tmp_path / "runtime.yaml"),
        "--switches", str(tmp_path / "switches.yaml"), "--metrics-host", "127.0.0.1",
        "--metrics-port", str(free_port()), "--spill-path", str(tmp_path / "spill.jsonl"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_recorded_file_drives_the_runtime_into_postgres_and_the_process_ends(tmp_path):
    days = [MONDAY, MONDAY + datetime.timedelta(days=1)]
    path = write_csv(tmp_path / "spy-1m.csv", minute_bars(days))
    postgres = ThrowawayPostgres().init().start()
    try:
        code, output = await run_runtime(tmp_path, "--replay", str(path), "--speed", "0",
                                         "--database-url", postgres.dsn)
        assert code == 0, output
        summary = next(json.loads(line) for line in output.splitlines() if "shutdown complete" in line)
        assert summary["messages"] == 2 * 2 * 390  # a quote and a trade per bar
        with psycopg.connect(postgres.dsn) as conn:
            ticks = conn.execute("SELECT count(*), min(ts), max(ts) FROM ticks").fetchone()
            bars = conn.execute("SELECT count(DISTINCT ts::date) FROM bars WHERE timeframe_s = 60").fetchone()
        assert ticks is not None
        assert ticks[0] == 2 * 2 * 390
        assert ticks[1] == datetime.datetime(2026, 3, 2, 14, 31, tzinfo=datetime.UTC)  # 09:31 New York
        assert bars == (2,)
    finally:
        postgres.stop()


async def test_a_file_with_nothing_usable_exits_2_with_the_reason(tmp_path):
    rows = minute_bars([MONDAY])[:5]
    for row in rows:
        row["close"] = "n/a"
    path = write_csv(tmp_path / "bad.csv", rows)
    code, output = await run_runtime(tmp_path, "--replay", str(path), "--speed", "0")
    assert code == 2
    assert "cannot replay: nothing usable in" in output
    assert "unparseable: 5 dropped" in output
