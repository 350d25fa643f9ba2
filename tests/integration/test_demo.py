"""`python -m devstack.demo --keep-running` is safe to leave and to stop: SIGTERM or SIGINT ends every process
it started (the operator, the feed, Prometheus, every pod's runtime), and it exits 0."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

READY_TIMEOUT = 240.0


def _lines(stream, out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_stops_everything_the_demo_started(tmp_path, signum):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "devstack.demo", "--keep-running", "--no-bad-change"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True)
    reader.start()
    output: list[str] = []
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not any(line.startswith("Running.") for line in output):
            assert demo.poll() is None, "the demo exited early:\n" + "".join(output)
            assert time.monotonic() < deadline, "the demo did not get to Running:\n" + "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        started = psutil.Process(demo.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in started]
        assert any("trading_operator" in c for c in commands)
        assert any("trading_runtime.feeds.server" in c for c in commands)
        assert any(c.startswith("prometheus") for c in commands)
        assert sum("-m trading_runtime --config" in c for c in commands) >= 3  # SPY, QQQ and ES
        demo.send_signal(signum)
        assert demo.wait(60) == 0
        _, alive = psutil.wait_procs(started, timeout=15)
        assert not alive, "left running: " + ", ".join(" ".join(p.cmdline()[:4]) for p in alive)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        reader.join(10)
        assert demo.stdout is not None
        demo.stdout.close()
