"""A throwaway MLflow tracking server: the embedded default's (modelops.server: SQLite store, file artifacts,
job execution off) in a temporary directory, with its OTLP/HTTP trace receiver (`/v1/traces`)."""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from modelops.server import LocalTrackingServer


class ThrowawayMlflow(LocalTrackingServer):
    def __init__(self) -> None:
        super().__init__(pathlib.Path(tempfile.mkdtemp(prefix="tradeops-mlflow-")))

    @property
    def traces_endpoint(self) -> str:
        return f"{self.url}/v1/traces"

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ThrowawayMlflow:
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()
