"""ThrowawayS3: moto's S3 server as a real process on a free port (boto3 talks HTTP to it)."""

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

from tests.servers import free_port

# moto accepts any credentials; these are not secrets, only what boto3 needs to sign requests.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def _moto_server() -> str:
    beside = pathlib.Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]' (the S3 tests need it)")
    return found


class ThrowawayS3:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-s3-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThrowawayS3:
        self.log = (self.dir / "log").open("wb")
        self.process = subprocess.Popen([_moto_server(), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **FAKE_CREDENTIALS})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {(self.dir / 'log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"moto_server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
