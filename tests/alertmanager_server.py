"""A throwaway Alertmanager (Debian's `prometheus-alertmanager`, no clustering) and a webhook recorder that
stands where the receivers' endpoints are (operator webhook, PagerDuty Events API, Slack), keeping each
notification's path and JSON body."""

from __future__ import annotations

import http.server
import json
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Any

from tests.servers import free_port

BINARY = "prometheus-alertmanager"


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        raise RuntimeError("amtool is not on PATH: install Debian's `prometheus-alertmanager` package "
                           "(scripts/install-system-deps.sh)")
    return found


class ThrowawayAlertmanager:
    def __init__(self, config: str) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            raise RuntimeError(f"{BINARY} is not on PATH: install Debian's `prometheus-alertmanager` package "
                               "(scripts/install-system-deps.sh)")
        self.binary = binary
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-alertmanager-"))
        self.config = self.dir / "alertmanager.yml"
        self.config.write_text(config)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ThrowawayAlertmanager:
        self._log = (self.dir / "alertmanager.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.process.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"alertmanager not ready after {timeout} s: {self.logs()}")

    def post(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()

    def logs(self) -> str:
        path = self.dir / "alertmanager.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class WebhookRecorder(http.server.ThreadingHTTPServer):
    """Answers 200 to every POST and keeps (path, JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Recorder)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for where, body in self.received if where == path]

    def __enter__(self) -> WebhookRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Recorder(http.server.BaseHTTPRequestHandler):
    server: WebhookRecorder

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with self.server.lock:
            self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass
