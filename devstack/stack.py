"""The whole local stack: feed, Prometheus, the emulated API whose kubelet runs every Pod as a real
trading-runtime process, and the operator — what the demo, the analysis tests and the rollback benchmark
run."""

from __future__ import annotations

import contextlib
import pathlib
from dataclasses import dataclass
from typing import Any

from devstack.emulator import EmulatorThread, write_kubeconfig
from devstack.fleet import ProcessKubelet
from devstack.processes import (
    FeedProcess,
    OperatorProcess,
    PaperBrokerProcess,
    PrometheusProcess,
    install_crd,
    kube_for,
)
from trading_operator import naming
from trading_operator.kube import Resource
from trading_runtime.config import BrokerApi, BrokerApiKey, SecretKeyRef
from trading_runtime.election import API_URL_ENV

BROKER_SECRET = "tradeops-paper-broker-keys"
"""The Secret holding the local paper broker's development API keys (in the namespace the demo uses)."""
PAPER_KEYS = {"alpha": ("dev-alpha-key", 20.0, 4), "beta": ("dev-beta-key", 10.0, 2)}
"""The paper broker's development keys: name → (value, requests/s, burst)."""


def scrape_labels(pod: dict[str, Any]) -> dict[str, str]:
    """The target labels a PodMonitor's relabeling gives a trading pod: where it runs and what it runs."""
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    return {"namespace": meta.get("namespace", ""), "pod": meta["name"],
            "symbol": labels.get(naming.SYMBOL_LABEL, ""), "revision": labels.get(naming.REVISION_LABEL, ""),
            "track": labels.get(naming.TRACK_LABEL, "stable")}


@dataclass
class AnalysisStack:
    """Feed, Prometheus, emulated API with a process kubelet, and the operator."""

    workdir: pathlib.Path
    kubeconfig: pathlib.Path
    feed: FeedProcess
    prometheus: PrometheusProcess
    kubelet: ProcessKubelet
    emulator: EmulatorThread
    operator: OperatorProcess
    paper_broker: PaperBrokerProcess | None = None

    def stop(self) -> None:
        """Stop everything this stack started: the operator first (nothing reconciles a half-stopped
        cluster), then every pod's process with the emulator, Prometheus and the feed."""
        for part in (self.operator, self.emulator, self.paper_broker, self.prometheus, self.feed):
            if part is None:
                continue
            with contextlib.suppress(Exception):  # tear everything down even if one part is already gone
                part.stop()


def start_analysis_stack(workdir: pathlib.Path, policies_dir: pathlib.Path | None = None,
                         feed_rate: float = 10.0, operator_env: dict[str, str] | None = None,
                         time_scale: float = 1.0, symbols: str = "SPY,QQQ,ES", feed_edge: float = 0.0,
                         paper_broker: bool = False) -> AnalysisStack:
    """Start the whole local stack; the caller stops it. 10 ticks/s (~30 messages/s per symbol) keeps
    injected latencies of ~20 ms sustainable. `time_scale` < 1 shortens the kubelet's back-off, probe
    periods and config sync (tests); 1.0 is a real kubelet's timing. `symbols`: the tickers the feed serves;
    `feed_edge`: the synthetic market's seeded order-flow edge (0: none, where no strategy has skill).
    `paper_broker`: also the local broker API (devstack/paper_broker.py), its keys in the `BROKER_SECRET`
    Secret of the default namespace; `broker_config` gives the config that routes a symbol through it."""
    feed = FeedProcess(workdir, symbols=symbols, rate=feed_rate, edge=feed_edge).start()
    started: list[Any] = [feed]
    try:
        prometheus = PrometheusProcess(workdir).start()
        started.append(prometheus)
        broker = PaperBrokerProcess(workdir, feed.url, PAPER_KEYS, symbols).start() if paper_broker else None
        if broker is not None:
            started.append(broker)
        kubelet = ProcessKubelet(workdir, extra_env={"TRADEOPS_FEED_URL": feed.url}, time_scale=time_scale,
                                 scrape=prometheus, scrape_labels=scrape_labels)
        emulator = EmulatorThread(kubelet=kubelet).start()
        started.append(emulator)
        # The in-cluster API as the devstack's pods reach it: each symbol's replicas hold its Lease there.
        kubelet.extra_env[API_URL_ENV] = emulator.url
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", emulator.url)
        install_crd(kube_for(kubeconfig))
        if broker is not None:
            kube_for(kubeconfig).create(Resource("v1", "secrets"), "default", {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": BROKER_SECRET},
                "stringData": {name: secret for name, (secret, _, _) in PAPER_KEYS.items()}})
        env = {"TRADEOPS_PROMETHEUS_URL": prometheus.url, **(operator_env or {})}
        if policies_dir is not None:
            env["TRADEOPS_POLICIES_DIR"] = str(policies_dir)
        operator = OperatorProcess(kubeconfig, workdir / "operator.log", env=env).start()
    except BaseException:
        for part in reversed(started):
            with contextlib.suppress(Exception):
                part.stop()
        raise
    return AnalysisStack(workdir, kubeconfig, feed, prometheus, kubelet, emulator, operator, broker)


def broker_config(broker: PaperBrokerProcess) -> BrokerApi:
    """The `spec.config.broker` that sends a symbol's orders and snapshots to the local paper broker."""
    return BrokerApi(endpoints=broker.urls, keys=[
        BrokerApiKey(name=name, secret_key_ref=SecretKeyRef(name=BROKER_SECRET, key=name), rate_per_second=rate,
                     burst=burst) for name, (_, rate, burst) in broker.keys.items()])
