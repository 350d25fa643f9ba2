"""A throwaway Alertmanager (Debian's `prometheus-alertmanager`, no clustering) and a webhook recorder that
stands where the receivers' endpoints are (operator webhook, PagerDuty Events API, Slack), keeping each
notification's path and JSON body."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import urllib.error
import urllib.request
from typing import Any

from tests.servers import ThrowawayProcess

BINARY = "prometheus-alertmanager"


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        raise RuntimeError("amtool is not on PATH: install Debian's `prometheus-alertmanager` package "
                           "(scripts/install-system-deps.sh)")
    return found


class ThrowawayAlertmanager(ThrowawayProcess):
    def __init__(self, config: str) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            raise RuntimeError(f"{BINARY} is not on PATH: install Debian's `prometheus-alertmanager` package "
                               "(scripts/install-system-deps.sh)")
        super().__init__("tradeops-alertmanager-")
        self.binary = binary
        self.config = self.dir / "alertmanager.yml"
        self.config.write_text(config)

    def start(self, timeout: float = 30.0) -> ThrowawayAlertmanager:
        self.launch([self.binary, f"--config.file={self.config}", f"--storage.path={self.dir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
                    "/-/ready", timeout)
        return self

    def post(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()


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
