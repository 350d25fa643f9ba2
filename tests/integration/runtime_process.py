"""A trading-runtime process for integration tests: its config files, a free metrics port, SIGTERM to stop."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import yaml

from tests.servers import free_port


class RuntimeProcess:
    def __init__(self, workdir: pathlib.Path, symbol: str, feed_url: str, revision: int = 1,
                 runtime: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 database_url: str | None = None) -> None:
        self.dir = workdir / f"{symbol.lower()}-{revision}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.symbol, self.port = symbol, free_port()
        config = {"symbol": symbol, "market": "equity-options", "revision": revision, "runtime": runtime or {}}
        (self.dir / "runtime.yaml").write_text(yaml.safe_dump(config))
        (self.dir / "switches.yaml").write_text(yaml.safe_dump({"tradingEnabled": True}))
        self.args = [sys.executable, "-m", "trading_runtime", "--config", str(self.dir / "runtime.yaml"),
                     "--switches", str(self.dir / "switches.yaml"), "--feed-url", feed_url,
                     "--metrics-host", "127.0.0.1", "--metrics-port", str(self.port),
                     "--spill-path", str(self.dir / "spill.jsonl")]
        if database_url:
            self.args += ["--database-url", database_url]
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TRADEOPS_", "OTEL_"))},
                    **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> pathlib.Path:
        return self.dir / "runtime.log"

    def start(self) -> RuntimeProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (killed after `timeout`)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def metric(self, prefix: str) -> float | None:
        """Sum of the samples whose line starts with `prefix`; None when there are none (or no answer)."""
        try:
            text = self.metrics()
        except OSError:
            return None
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]
        return sum(values) if values else None


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout} s")
        time.sleep(every)
