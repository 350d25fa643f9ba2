"""The embedded default tracking server: a local `mlflow server` with a SQLite store, file artifacts and its
job executor off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: ~0.5 GB instead of ~2.3 GB with its seven job
workers). A cluster runs MLflow on PostgreSQL and S3 instead."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Self


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalTrackingServer:
    def __init__(self, directory: pathlib.Path) -> None:
        self.dir, self.port = directory, _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> Self:
        binary = pathlib.Path(sys.executable).with_name("mlflow")
        if not binary.exists():
            raise RuntimeError(f"{binary} not found: install the ml extra (`pip install -e .[ml]`)")
        self.dir.mkdir(parents=True, exist_ok=True)
        # `mlflow server` runs uvicorn from PATH: the venv's bin first, whatever PATH the caller has.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        with (self.dir / "mlflow.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(binary), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                 "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                 "--default-artifact-root", str(self.dir / "artifacts")],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                        if response.status == 200:
                            return self
                except OSError:  # not listening yet, or too slow to answer while it starts
                    time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise RuntimeError(f"mlflow server did not start: {self.logs()}")

    def logs(self) -> str:
        path = self.dir / "mlflow.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
