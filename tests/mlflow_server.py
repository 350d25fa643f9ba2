"""A throwaway MLflow tracking server: the local OTLP/HTTP trace receiver (`/v1/traces`), SQLite store,
free port, job execution off (its seven job workers would take ~2 GB here)."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import IO

from tests.servers import free_port


class ThrowawayMlflow:
    def __init__(self) -> None:
        binary = pathlib.Path(sys.executable).with_name("mlflow")
        if not binary.exists():
            raise RuntimeError(f"{binary} not found: install the dev extra (`pip install -e .[dev]`, ./dev install)")
        self.binary = binary
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-mlflow-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def start(self, timeout: float = 90.0) -> ThrowawayMlflow:
        self._log = (self.dir / "mlflow.log").open("wb")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "PATH": f"{self.binary.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.process = subprocess.Popen(
            [str(self.binary), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
             "--default-artifact-root", str(self.dir / "artifacts")],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"mlflow server not healthy after {timeout} s: {self.logs()}")

    def logs(self) -> str:
        path = self.dir / "mlflow.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
