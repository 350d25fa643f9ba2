"""The processes of the local stack: the emulated Kubernetes API, the operator, the synthetic feed and a
real Prometheus, each started on a free port, stopped with SIGTERM, and tied to the process that started
them (they end with it, however it ends).

Shared by the demo (`./dev demo`), the integration tests and the benchmarks, so all of them run the
operator the way a cluster would: a separate process talking HTTP to an API server."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import TypeVar

from trading_operator.crd import build_crd, build_fleet_crd
from trading_operator.kube import CRDS, KubeApi, is_conflict, load_api_client

T = TypeVar("T")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


_SETPRIV = shutil.which("setpriv")


def tied_to_parent(command: list[str]) -> list[str]:
    """The command with a parent-death signal (util-linux `setpriv --pdeathsig TERM`): if the process
    that starts it dies, even by SIGKILL, it is sent SIGTERM. Unchanged where setpriv is missing."""
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *command] if _SETPRIV else command


class StackError(RuntimeError):
    """A process of the stack did not start or a wait ran out."""


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `predicate` returns something truthy; raise with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling through transient API errors; report the last one
            last_error = exc
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f}s waiting for {what}" +
                     (f" (last error: {last_error})" if last_error else ""))


class EmulatorProcess:
    """`python -m devstack.emulator` on a free port, writing its own kubeconfig."""

    def __init__(self, workdir: pathlib.Path, log_name: str = "emulator.log", args: list[str] | None = None) -> None:
        self.args = list(args or [])
        self.kubeconfig = workdir / "kubeconfig"
        self.log_path = workdir / log_name
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> EmulatorProcess:
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                tied_to_parent([sys.executable, "-m", "devstack.emulator", "--port", "0",
                                "--kubeconfig", str(self.kubeconfig), *self.args]),
                stdout=subprocess.PIPE, stderr=log, text=True,
            )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise StackError(f"emulator did not start: {line!r}; see {self.log_path}")
        self.url = line
        try:
            wait_for(self.kubeconfig.exists, timeout, "the emulator's kubeconfig")
        except StackError:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        stop_process(self._process)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None


class OperatorProcess:
    """`python -m trading_operator` against a kubeconfig, with its log in a file."""

    def __init__(self, kubeconfig: pathlib.Path, log_path: pathlib.Path, env: Mapping[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = dict(env or {})
        self.args = list(args or ["--standalone"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(tied_to_parent([sys.executable, "-m", "trading_operator", *self.args]),
                                            stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def stop_process(process: subprocess.Popen[str] | subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kube_for(kubeconfig: pathlib.Path) -> KubeApi:
    return KubeApi(load_api_client(str(kubeconfig)))


def install_crd(kube: KubeApi) -> None:
    """Create (or update) the TradingSymbol and FleetRollout CRDs."""
    for crd in (build_crd(), build_fleet_crd()):
        try:
            kube.create(CRDS, None, crd)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            kube.merge_patch(CRDS, None, crd["metadata"]["name"], crd)


def find_kubectl() -> str:
    """kubectl from PATH (scripts/install-system-deps.sh installs Debian's kubernetes-client)."""
    found = shutil.which("kubectl")
    if found is None:
        raise StackError("kubectl is not installed: run scripts/install-system-deps.sh")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except OSError:
        return False


class FeedProcess:
    """`python -m trading_runtime.feeds.server`: the deterministic synthetic options market over WebSocket."""

    def __init__(self, workdir: pathlib.Path, symbols: str = "SPY,QQQ,ES", rate: float = 50.0, seed: int = 0,
                 edge: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.log_path = workdir / "feed.log"
        self.args = ["--symbols", symbols, "--rate", str(rate), "--seed", str(seed), "--port", str(self.port),
                     "--edge", str(edge)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> FeedProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                tied_to_parent([sys.executable, "-m", "trading_runtime.feeds.server", *self.args]),
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()  # a start that failed leaves nothing running
        raise RuntimeError(f"the feed did not start within {timeout:.0f}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        stop_process(self.process)


class PaperBrokerProcess:
    """`python -m devstack.paper_broker`: the local broker API (orders, snapshots) on `endpoints` free ports,
    following the feed at `feed_url`, with development API keys (name → (secret, rate/s, burst))."""

    def __init__(self, workdir: pathlib.Path, feed_url: str, keys: Mapping[str, tuple[str, float, int]],
                 symbols: str = "SPY,QQQ,ES", endpoints: int = 2) -> None:
        self.log_path = workdir / "paper-broker.log"
        self.keys = dict(keys)
        self.args = ["--feed-url", feed_url, "--symbols", symbols, "--endpoints", str(endpoints),
                     *(a for name, (secret, rate, burst) in self.keys.items()
                       for a in ("--key", f"{name}:{secret}:{rate:g}:{burst}"))]
        self.endpoints = endpoints
        self.urls: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> PaperBrokerProcess:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(tied_to_parent([sys.executable, "-m", "devstack.paper_broker", *self.args]),
                                            stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.process.stdout is not None
        for _ in range(self.endpoints):
            line = self.process.stdout.readline().strip()
            if not line.startswith("http"):
                self.stop()
                raise StackError(f"the paper broker did not start: {line!r}; see {self.log_path}")
            self.urls.append(line)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


class PrometheusProcess:
    """A real Prometheus server scraping every target written to its file-SD directory, every second."""

    def __init__(self, workdir: pathlib.Path, scrape_interval: str = "1s") -> None:
        if shutil.which("prometheus") is None:
            raise RuntimeError("prometheus is not installed: apt-get install prometheus (./dev install does)")
        self.dir = workdir / "prometheus"
        self.targets = self.dir / "targets"
        self.targets.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                       "scrape_timeout": scrape_interval},
            "scrape_configs": [{
                "job_name": "trading-runtime",
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(self.targets / "*.json")], "refresh_interval": "1s"}],
            }],
        }))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PrometheusProcess:
        with (self.dir / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                tied_to_parent(["prometheus", f"--config.file={self.config}",
                                f"--storage.tsdb.path={self.dir / 'data'}",
                                f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d"]),
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_ok(f"{self.url}/-/ready"):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()  # a start that failed leaves nothing running
        raise RuntimeError(f"Prometheus did not start within {timeout:.0f}s: "
                           f"{(self.dir / 'prometheus.log').read_text()[-2000:]}")

    def stop(self) -> None:
        stop_process(self.process)

    def publish(self, name: str, address: str, labels: dict[str, str]) -> None:
        """Scrape `address` with these target labels (written atomically: Prometheus watches the directory)."""
        temporary = self.targets / f".{name}.tmp"
        temporary.write_text(json.dumps([{"targets": [address], "labels": labels}]))
        temporary.rename(self.targets / f"{name}.json")

    def unpublish(self, name: str) -> None:
        (self.targets / f"{name}.json").unlink(missing_ok=True)
