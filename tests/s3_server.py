"""ThrowawayS3: moto's S3 server as a real process on a free port (boto3 talks HTTP to it)."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

from tests.servers import ThrowawayProcess

# moto accepts any credentials; these are not secrets, only what boto3 needs to sign requests.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def _moto_server() -> str:
    beside = pathlib.Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]' (the S3 tests need it)")
    return found


class ThrowawayS3(ThrowawayProcess):
    def __init__(self) -> None:
        super().__init__("tradeops-s3-")

    @property
    def endpoint(self) -> str:
        return self.url

    def start(self, timeout: float = 60.0) -> ThrowawayS3:
        """Start and wait until it answers (generous: importing moto takes tens of seconds on a loaded machine)."""
        self.launch([_moto_server(), "-H", "127.0.0.1", "-p", str(self.port)], "/", timeout,
                    env={**os.environ, **FAKE_CREDENTIALS})
        return self
